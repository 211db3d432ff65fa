/**
 * The PostgreSQL ledger (node-postgres), for several pollers sharing one database. The SQLite
 * ledger's transitions, in set form: a batch is one statement over `unnest` arrays (two array
 * parameters whatever the batch size, far from PostgreSQL's 65,535-parameter cap), and claims are
 * `FOR UPDATE SKIP LOCKED` on partial indexes of due rows, so concurrent claimers never wait on
 * each other and never take the same row. A write whose claim is no longer held changes nothing.
 *
 * This class holds the pool, the outbox routes and the transactions; the SQL is one module per
 * transition in `sql/`, the decisions are the planners of `core/`.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { PermanentError } from '../../errors.js';
import type { InstanceRegistry, Ledger, SharedListing } from '../ledger.js';
import { OutboxRouter } from '../outbox-routes.js';
import type * as R from '../records.js';
import type {
  AbsenceOptions,
  AbsenceResult,
  DeletionResult,
  ListingCoverage,
  RemovedUpstream,
  UpstreamDeletion,
} from '../removed-upstream.js';
import { type FileRow, toRun } from '../rows.js';
import { inDoubtAgain, isInDoubt } from './in-doubt.js';
import { recordListing } from './listing.js';
import { fetchedEvents, fetchFailedEvents, finishedEvents } from './outbox-events.js';
import {
  inTransaction,
  type LedgerConnectionStatus,
  LedgerPool,
  type LedgerSwitch,
  type Q,
  ROLLBACK,
  unreachable,
} from './pool.js';
import { PostgresVolumeLedger } from './postgres-volume-ledger.js';
import { checkSchema, migrate } from './schema.js';
import { type ClaimTo, claimedBy, claimIds, claimNewest, lostOf, renewLeases } from './sql/claim.js';
import { finishProcessing } from './sql/finish-processing.js';
import { forget } from './sql/forget.js';
import { heartbeat, instances, leave, sweepDead } from './sql/instances.js';
import { acquireLister, listers } from './sql/listers.js';
import { markFetchFailed } from './sql/mark-fetch-failed.js';
import { markFetched } from './sql/mark-fetched.js';
import { markSuperseded } from './sql/mark-superseded.js';
import type { PendingEvent } from './sql/outbox.js';
import * as outbox from './sql/outbox.js';
import { markPluginRunning, markPluginSucceeded, runsOf } from './sql/plugin-runs.js';
import { prune } from './sql/prune.js';
import { fileById, history, queryFiles } from './sql/read-files.js';
import { recordAbsences, recordDeletion } from './sql/record-absences.js';
import { recoverStale } from './sql/recover-stale.js';
import { releaseFetch } from './sql/release-fetch.js';
import { scheduleRetry } from './sql/schedule-retry.js';
import { activity, liveFetches, recordPoll, stats, status } from './sql/status.js';

export { describePgError } from './pool.js';

export interface PostgresLedgerOptions {
  /** `postgres://user@host:port/db` (or several hosts, libpq's forms), without a password. */
  readonly url: string;
  /** The same URL as shown in logs and errors (no userinfo secrets). */
  readonly displayUrl: string;
  /** From `passwordFile` or the config; otherwise PGPASSWORD or PGPASSFILE (~/.pgpass) apply. */
  readonly password?: string;
  /** Connections this process holds at most. @default 4 */
  readonly poolSize?: number;
  /** Read-only commands (status, files, why): no migration; the schema must be current. */
  readonly readonly?: boolean;
  /** Told about errors of idle connections (a restarted server); they are replaced on next use. */
  readonly onIdleError?: (err: Error) => void;
  /**
   * `landingMode: per-host`: this instance's id. Its landed files are recorded as on it, and it
   * processes only files its own landing holds. Absent: one landing root shared by every instance.
   */
  readonly landedOn?: string;
  /** Told once per move to another host after a failover. */
  readonly onSwitch?: (s: LedgerSwitch) => void;
}

export class PostgresLedger implements Ledger, InstanceRegistry, SharedListing, RemovedUpstream {
  /** Each commit is a round trip over the network: files landing within 12 ms share one. */
  readonly commitDelayMs = 12;
  readonly #pool: LedgerPool;
  readonly #outbox = new OutboxRouter();
  readonly #displayUrl: string;
  /** The instance whose landing this process writes (a root per host), or null (the shared root). */
  readonly #landedOn: string | null;
  readonly volumes: PostgresVolumeLedger;

  private constructor(pool: LedgerPool, displayUrl: string, landedOn: string | null) {
    this.#pool = pool;
    this.#displayUrl = displayUrl;
    this.#landedOn = landedOn;
    this.volumes = new PostgresVolumeLedger(pool, this.#outbox);
  }

  /** Connect, and migrate (or, read-only, check) the schema. One clear error when unreachable. */
  static async open(opts: PostgresLedgerOptions): Promise<PostgresLedger> {
    const pool = await LedgerPool.open(opts);
    try {
      if (opts.readonly) await checkSchema(pool);
      else await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (err instanceof PermanentError) throw err;
      throw unreachable(opts.displayUrl, err);
    }
    return new PostgresLedger(pool, opts.displayUrl, opts.landedOn ?? null);
  }

  get displayUrl(): string {
    return this.#displayUrl;
  }

  /** The host in use and the failovers seen (status page). */
  connection(): LedgerConnectionStatus {
    return this.#pool.status();
  }

  #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.#pool, fn);
  }

  async observe(
    source: string,
    observations: readonly R.Observation[],
    opts: R.ObserveOptions,
  ): Promise<R.ObserveResult> {
    let result: R.ObserveResult | undefined;
    try {
      await this.#tx(async (c) => {
        result = await recordListing(c, source, observations, opts);
        if (opts.dryRun) throw ROLLBACK;
      });
    } catch (err) {
      if (err !== ROLLBACK) throw err;
    }
    return result as R.ObserveResult;
  }

  claimForFetch(ids: readonly number[], owner: string, leaseUntilMs: number, nowMs: number): Promise<R.FileRecord[]> {
    return this.#claim(() => claimIds(this.#pool, ids, 'fetching', owner, leaseUntilMs, nowMs, this.#landedOn), {
      to: 'fetching',
      owner,
      leaseUntilMs,
      nowMs,
      among: { ids },
    });
  }

  /** A claim, and, when its commit went unanswered in a failover, the rows it took if it committed. */
  async #claim(
    run: () => Promise<R.FileRecord[]>,
    c: {
      to: ClaimTo;
      owner: string;
      leaseUntilMs: number;
      nowMs: number;
      among: Parameters<typeof claimedBy>[5];
    },
  ): Promise<R.FileRecord[]> {
    try {
      return await run();
    } catch (err) {
      if (!isInDoubt(err)) throw err;
      return await claimedBy(this.#pool, c.to, c.owner, c.leaseUntilMs, c.nowMs, c.among);
    }
  }

  renewLeases(ids: readonly number[], owner: string, leaseUntilMs: number): Promise<R.ClaimLost> {
    return inDoubtAgain(() => renewLeases(this.#pool, ids, owner, leaseUntilMs));
  }

  async markFetched(items: readonly R.FetchedItem[], owner: string, nowMs: number): Promise<R.ClaimLost> {
    if (items.length === 0) return [];
    return this.#claimedUpdate(
      items,
      (c, rows) => markFetched(c, items, owner, nowMs, this.#landedOn, rows),
      (c, rows) => fetchedEvents(this.#outbox, c, items, rows),
      nowMs,
    );
  }

  async markFetchFailed(items: readonly R.FetchFailedItem[], owner: string, nowMs: number): Promise<R.ClaimLost> {
    if (items.length === 0) return [];
    return this.#claimedUpdate(
      items,
      (c, rows) => markFetchFailed(c, items, owner, nowMs, rows),
      async (_c, rows) => fetchFailedEvents(this.#outbox, items, rows),
      nowMs,
    );
  }

  /**
   * One UPDATE … RETURNING of claimed rows; with sinks configured, the events the updated rows
   * give are written in the same transaction (whole rows come back for them; without sinks only
   * the ids). Returns the ids whose claim was lost.
   */
  async #claimedUpdate(
    items: readonly { id: number }[],
    update: (c: Q, rows: boolean) => Promise<Array<Pick<FileRow, 'id'>>>,
    eventsOf: (c: Q, rows: FileRow[]) => Promise<PendingEvent[]>,
    nowMs: number,
  ): Promise<R.ClaimLost> {
    const write = async (c: Q) => {
      if (!this.#outbox.enabled) return await update(c, false);
      const rows = (await update(c, true)) as FileRow[];
      if (rows.length > 0) await outbox.insertEvents(c, await eventsOf(c, rows), nowMs);
      return rows;
    };
    const rows = await inDoubtAgain(() => (this.#outbox.enabled ? this.#tx(write) : write(this.#pool)));
    return lostOf(
      items.map((i) => i.id),
      rows,
    );
  }

  releaseFetch(ids: readonly number[], owner: string, nowMs: number): Promise<void> {
    return inDoubtAgain(() => releaseFetch(this.#pool, ids, owner, nowMs));
  }

  claimForProcessing(
    source: string | undefined,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<R.FileRecord[]> {
    return this.#claim(
      () => claimNewest(this.#pool, 'process', source ?? null, owner, leaseUntilMs, nowMs, limit, this.#landedOn),
      {
        to: 'processing',
        owner,
        leaseUntilMs,
        nowMs,
        among: { source: source ?? null },
      },
    );
  }

  claimIdsForProcessing(
    ids: readonly number[],
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
  ): Promise<R.FileRecord[]> {
    return this.#claim(() => claimIds(this.#pool, ids, 'processing', owner, leaseUntilMs, nowMs, this.#landedOn), {
      to: 'processing',
      owner,
      leaseUntilMs,
      nowMs,
      among: { ids },
    });
  }

  markSuperseded(ids: readonly number[], owner: string, nowMs: number): Promise<R.ClaimLost> {
    return inDoubtAgain(() => markSuperseded(this.#pool, ids, owner, nowMs));
  }

  async pluginRuns(fileIds: readonly number[]): Promise<Map<number, R.PluginRunRecord[]>> {
    const runs = await runsOf(this.#pool, fileIds);
    return new Map([...runs].map(([id, rows]) => [id, rows.map(toRun)]));
  }

  markPluginRunning(runs: readonly R.PluginRunStart[], nowMs: number): Promise<number[]> {
    // A repeat after an unanswered commit counts the attempt twice: at worst one attempt early to quarantine.
    return inDoubtAgain(() => markPluginRunning(this.#pool, runs, nowMs));
  }

  markPluginSucceeded(runs: readonly R.PluginRunSuccess[], owner: string, nowMs: number): Promise<void> {
    // Idempotent: run again where its commit went unanswered.
    return inDoubtAgain(() => markPluginSucceeded(this.#pool, runs, owner, nowMs));
  }

  async finishProcessing(
    results: readonly R.ProcessingResult[],
    owner: string,
    nowMs: number,
  ): Promise<Array<R.FileState | 'claim-lost'>> {
    if (results.length === 0) return [];
    return await inDoubtAgain(() =>
      this.#tx(async (c) => {
        const finished = await finishProcessing(c, results, owner, nowMs);
        if (this.#outbox.enabled) await outbox.insertEvents(c, finishedEvents(this.#outbox, finished), nowMs);
        const state = new Map(finished.map((f) => [f.row.id, f.row.state]));
        return results.map((r) => state.get(r.id) ?? 'claim-lost');
      }),
    );
  }

  recoverStale(
    nowMs: number,
    isOwnerGone: (owner: string) => boolean,
  ): Promise<{ fetches: number; processing: number }> {
    return this.#tx((c) => recoverStale(c, nowMs, isOwnerGone));
  }

  scheduleRetry(f: R.RetryFilter, nowMs: number): Promise<number[]> {
    return this.#tx((c) => scheduleRetry(c, f, nowMs));
  }

  recordAbsences(source: string, coverage: ListingCoverage, opts: AbsenceOptions): Promise<AbsenceResult> {
    return this.#tx((c) => recordAbsences(c, this.#outbox, source, coverage, opts));
  }

  recordDeletion(source: string, deletion: UpstreamDeletion, opts: { nowMs: number }): Promise<DeletionResult> {
    return this.#tx((c) => recordDeletion(c, this.#outbox, source, deletion, opts.nowMs));
  }

  forget(f: R.ForgetFilter): Promise<number> {
    return this.#tx((c) => forget(c, f));
  }

  get(id: number): Promise<R.FileRecord | undefined> {
    return fileById(this.#pool, id);
  }

  history(source: string, p: string): Promise<R.FileRecord[]> {
    return history(this.#pool, source, p);
  }

  files(q: R.FileQuery): Promise<R.FileRecord[]> {
    return queryFiles(this.#pool, q);
  }

  recordPoll(source: string, displayUrl: string, ok: boolean, error: string | null, nowMs: number): Promise<void> {
    return inDoubtAgain(() => recordPoll(this.#pool, source, displayUrl, ok, error, nowMs));
  }

  status(): Promise<R.SourceStatus[]> {
    return status(this.#pool);
  }

  setOutbox(routes: readonly R.OutboxRoute[]): void {
    this.#outbox.set(routes);
  }

  pendingEvents(sink: string, limit: number): Promise<R.OutboxEvent[]> {
    return outbox.pendingEvents(this.#pool, sink, limit);
  }

  markEventsSent(sink: string, seqs: readonly number[], nowMs: number): Promise<void> {
    return inDoubtAgain(() => outbox.markEventsSent(this.#pool, sink, seqs, nowMs));
  }

  async outboxStats(): Promise<R.OutboxStats[]> {
    return this.#outbox.stats(await outbox.pendingPerSink(this.#pool));
  }

  pruneSentEvents(beforeMs: number): Promise<number> {
    return outbox.pruneSentEvents(this.#pool, beforeMs);
  }

  async emitProductEvent(kind: R.ProductEventKind, source: string, fact: R.EventFact, nowMs: number): Promise<void> {
    const sinks = this.#outbox.sinks(kind, source);
    if (sinks.length === 0) return;
    // One statement: every sink's row, or none.
    const id = randomUUID();
    const text = JSON.stringify(fact);
    await outbox.insertEvents(
      this.#pool,
      sinks.map((sink) => ({ id, sink, kind, source, fileId: 0, fact: text })),
      nowMs,
    );
  }

  prune(
    rules: R.PruneRules,
    opts: { readonly limit: number; readonly nowMs: number; readonly dryRun?: boolean },
  ): Promise<R.PruneResult> {
    return this.#tx((c) => prune(c, rules, opts));
  }

  activity(nowMs: number, slotMs: number, slots: number): Promise<R.ActivitySlot[]> {
    return activity(this.#pool, nowMs, slotMs, slots);
  }

  stats(): Promise<R.LedgerStats> {
    return stats(this.#pool);
  }

  liveFetches(): Promise<Array<{ id: number; sizeBytes: number; mtimeMs: number }>> {
    return liveFetches(this.#pool);
  }

  heartbeat(
    i: { id: string; owner: string; host: string; pid: number },
    nowMs: number,
    leaseMs?: number,
  ): Promise<void> {
    return inDoubtAgain(() => heartbeat(this.#pool, i, nowMs, leaseMs));
  }

  sweepDead(nowMs: number, leaseMs: number): Promise<R.SweepResult> {
    return inDoubtAgain(() => this.#tx((c) => sweepDead(c, nowMs, leaseMs)));
  }

  instances(): Promise<R.InstanceRecord[]> {
    return instances(this.#pool);
  }

  acquireLister(source: string, owner: string, nowMs: number, leaseMs: number): Promise<number | null> {
    return acquireLister(this.#pool, source, owner, nowMs, leaseMs);
  }

  claimDueForFetch(
    source: string,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<R.FileRecord[]> {
    return this.#claim(
      () => claimNewest(this.#pool, 'fetch', source, owner, leaseUntilMs, nowMs, limit, this.#landedOn),
      {
        to: 'fetching',
        owner,
        leaseUntilMs,
        nowMs,
        among: { source },
      },
    );
  }

  listers(): Promise<Array<{ source: string; owner: string; epoch: number; leaseUntilMs: number }>> {
    return listers(this.#pool);
  }

  leave(id: string): Promise<void> {
    return inDoubtAgain(() => leave(this.#pool, id));
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
