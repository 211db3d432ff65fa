/**
 * The cycle's group commits, one per ledger transition: concurrent files meet in one ledger call
 * (one transaction, or one round trip for a networked ledger) instead of one each. Each file
 * awaits its own item, so a file's order (rename, then its commit) is kept; `flush` is a commit
 * point: what is queued is written now instead of when its batch timer fires (a few ms later).
 */
import type {
  FetchedItem,
  FileRecord,
  FileState,
  Ledger,
  PluginRunRecord,
  PluginRunStart,
  PluginRunSuccess,
  ProcessingResult,
} from '../../ledger/ledger.js';
import { GROUP_COMMIT_DEFAULTS, GroupCommit } from '../group-commit.js';

export class LedgerCommits {
  /** Resolves true when the claim was lost. */
  readonly fetched: GroupCommit<FetchedItem, boolean>;
  readonly claimProcess: GroupCommit<number, FileRecord | undefined>;
  readonly runs: GroupCommit<number, PluginRunRecord[]>;
  readonly running: GroupCommit<PluginRunStart, number>;
  readonly succeeded: GroupCommit<PluginRunSuccess, void>;
  readonly finish: GroupCommit<ProcessingResult, FileState | 'claim-lost'>;

  /**
   * `claimLeaseMs`: how long a processing claim lasts (the cycle's configured claim lease).
   * `direct`: every item is written at once, alone (a command processing a few files).
   */
  constructor(ledger: Ledger, owner: string, now: () => number, claimLeaseMs: number, direct = false) {
    const opts = direct
      ? { maxDelayMs: 0, maxItems: 1 }
      : ledger.commitDelayMs !== undefined
        ? { ...GROUP_COMMIT_DEFAULTS, maxDelayMs: ledger.commitDelayMs }
        : undefined;
    this.fetched = new GroupCommit(async (items) => {
      const lost = new Set(await ledger.markFetched(items, owner, now()));
      return items.map((i) => lost.has(i.id));
    }, opts);
    this.claimProcess = new GroupCommit(async (ids) => {
      const got = new Map(
        (await ledger.claimIdsForProcessing(ids, owner, now() + claimLeaseMs, now())).map((r) => [r.id, r]),
      );
      return ids.map((id) => got.get(id));
    }, opts);
    this.runs = new GroupCommit(async (ids) => {
      const runs = await ledger.pluginRuns(ids);
      return ids.map((id) => runs.get(id) ?? []);
    }, opts);
    this.running = new GroupCommit((starts) => ledger.markPluginRunning(starts, now()), opts);
    this.succeeded = new GroupCommit(async (runs) => {
      await ledger.markPluginSucceeded(runs, owner, now());
      return runs.map(() => undefined);
    }, opts);
    this.finish = new GroupCommit((results) => ledger.finishProcessing(results, owner, now()), opts);
  }

  /** A commit point: every item handed in so far is written now, not at its batch timer. */
  flush(): void {
    this.fetched.flush();
    this.claimProcess.flush();
    this.runs.flush();
    this.running.flush();
    this.succeeded.flush();
    this.finish.flush();
  }
}
