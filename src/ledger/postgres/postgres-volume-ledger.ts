/**
 * The PostgreSQL side of the volume ledger, on the pool of the file ledger: SQLite's transitions
 * in set form, through the same planners (`core/volume-join.ts`, `core/verdict.ts`,
 * `core/retry.ts`, `core/crash.ts`, `core/prune.ts`). One source's membership writes run one at a
 * time across hosts (an advisory lock); a claim is `FOR UPDATE SKIP LOCKED` with a lease, given
 * back when its instance dies, so each volume version's plugins run on one host at a time.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { CompletenessRules } from '../../volumes/completeness.js';
import { volumeRowFact } from '../core/volume-join.js';
import { type OutboxRouter, volumeOutcomeEvents } from '../outbox-routes.js';
import type { EventFact, PruneRules, VolumeEventKind } from '../records.js';
import type {
  LandedFile,
  MemberArrival,
  VolumeCounts,
  VolumeLedger,
  VolumeQuery,
  VolumeRecord,
  VolumeResult,
  VolumeRunRecord,
  VolumeRunStart,
  VolumeState,
} from '../volume-ledger.js';
import { toVolumeRun } from '../volume-rows.js';
import { inDoubtAgain, isInDoubt } from './in-doubt.js';
import { inTransaction, type LedgerPool, type Q } from './pool.js';
import { insertEvents, type PendingEvent } from './sql/outbox.js';
import { assignMembers, type ClosedVolume, closeDue, quietVersions } from './sql/volume-assign.js';
import { claimVolumes, volumesClaimedBy } from './sql/volume-claim.js';
import { finishVolumes } from './sql/volume-finish.js';
import { landedFiles } from './sql/volume-landed.js';
import { pruneVolumes } from './sql/volume-prune.js';
import { queryVolumes, recordsOf, volumeCounts, volumesByIds, volumesOfPath } from './sql/volume-read.js';
import { recoverStaleVolumes } from './sql/volume-recover.js';
import { retryVolumes } from './sql/volume-retry.js';
import { markVolumeRunning, volumeRunsOf } from './sql/volume-runs.js';

export class PostgresVolumeLedger implements VolumeLedger {
  readonly #pool: LedgerPool;
  readonly #outbox: OutboxRouter;

  constructor(pool: LedgerPool, outbox: OutboxRouter) {
    this.#pool = pool;
    this.#outbox = outbox;
  }

  #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.#pool, fn);
  }

  /** Outbox rows of one volume event: one per sink that wants it, one message id for all. */
  #events(kind: VolumeEventKind, source: string, volumeId: number, fact: EventFact): PendingEvent[] {
    const sinks = this.#outbox.sinks(kind, source);
    if (sinks.length === 0) return [];
    const id = randomUUID();
    const text = JSON.stringify(fact);
    return sinks.map((sink) => ({ id, sink, kind, source, fileId: 0, volumeId, fact: text }));
  }

  /** `volume-complete` / `volume-partial` of the versions that closed, in the caller's transaction. */
  async #closedEvents(c: Q, closed: readonly ClosedVolume[], nowMs: number): Promise<void> {
    if (!this.#outbox.enabled) return;
    const events = closed.flatMap(({ row, members }) =>
      this.#events(
        row.state === 'partial' ? 'volume-partial' : 'volume-complete',
        row.source,
        row.id,
        volumeRowFact(row, members),
      ),
    );
    await insertEvents(c, events, nowMs);
  }

  landedFiles(source: string, sinceMs: number, limit: number): Promise<LandedFile[]> {
    return landedFiles(this.#pool, source, sinceMs, limit);
  }

  assignMembers(
    source: string,
    arrivals: readonly MemberArrival[],
    examined: readonly number[],
    rules: CompletenessRules,
    nowMs: number,
  ): Promise<VolumeRecord[]> {
    return this.#tx(async (c) => {
      const { touched, closed } = await assignMembers(c, source, arrivals, examined, rules, nowMs);
      await this.#closedEvents(c, closed, nowMs);
      return volumesByIds(c, touched);
    });
  }

  async closeDue(source: string, rules: CompletenessRules, nowMs: number): Promise<VolumeRecord[]> {
    // Every cycle and timer tick asks: the usual answer (nothing quiet) costs one read, no lock.
    if ((await quietVersions(this.#pool, source, rules, nowMs)).length === 0) return [];
    return this.#tx(async (c) => {
      const closed = await closeDue(c, source, rules, nowMs);
      await this.#closedEvents(c, closed, nowMs);
      return volumesByIds(
        c,
        closed.map((v) => v.row.id),
      );
    });
  }

  async claimVolumes(
    source: string,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<VolumeRecord[]> {
    let rows: Awaited<ReturnType<typeof claimVolumes>>;
    try {
      rows = await claimVolumes(this.#pool, source, owner, leaseUntilMs, nowMs, limit);
    } catch (err) {
      if (!isInDoubt(err)) throw err;
      rows = await volumesClaimedBy(this.#pool, source, owner, leaseUntilMs, nowMs);
    }
    return recordsOf(this.#pool, rows);
  }

  async volumeRuns(ids: readonly number[]): Promise<Map<number, VolumeRunRecord[]>> {
    const runs = await volumeRunsOf(this.#pool, ids);
    return new Map([...runs].map(([id, rows]) => [id, rows.map(toVolumeRun)]));
  }

  markVolumeRunning(runs: readonly VolumeRunStart[], nowMs: number): Promise<number[]> {
    return markVolumeRunning(this.#pool, runs, nowMs);
  }

  async finishVolumes(
    results: readonly VolumeResult[],
    owner: string,
    nowMs: number,
  ): Promise<Array<VolumeState | 'claim-lost'>> {
    if (results.length === 0) return [];
    // Guarded by the claim: a repeat after a commit that happened reads as claim-lost.
    return inDoubtAgain(() => this.#finish(results, owner, nowMs));
  }

  #finish(results: readonly VolumeResult[], owner: string, nowMs: number): Promise<Array<VolumeState | 'claim-lost'>> {
    return this.#tx(async (c) => {
      const finished = await finishVolumes(c, results, owner, nowMs, this.#outbox.enabled);
      if (this.#outbox.enabled) {
        const events = finished.flatMap(({ row, members, result, verdict, counted }) =>
          volumeOutcomeEvents(volumeRowFact(row, members), verdict.state, result.outcomes, counted).flatMap((e) =>
            this.#events(e.kind, row.source, row.id, e.fact),
          ),
        );
        await insertEvents(c, events, nowMs);
      }
      const state = new Map(finished.map((f) => [f.row.id, f.verdict.state]));
      return results.map((r) => state.get(r.id) ?? 'claim-lost');
    });
  }

  recoverStaleVolumes(nowMs: number, isOwnerGone: (owner: string) => boolean): Promise<number> {
    return this.#tx((c) => recoverStaleVolumes(c, nowMs, isOwnerGone));
  }

  retryVolumes(
    filter: { source?: string; plugin?: string; key?: string; includeQuarantined: boolean },
    nowMs: number,
  ): Promise<number[]> {
    return this.#tx((c) => retryVolumes(c, filter, nowMs));
  }

  volumes(query: VolumeQuery): Promise<VolumeRecord[]> {
    return queryVolumes(this.#pool, query);
  }

  volumesOfPath(source: string, path: string): Promise<VolumeRecord[]> {
    return volumesOfPath(this.#pool, source, path);
  }

  volumeCounts(): Promise<VolumeCounts[]> {
    return volumeCounts(this.#pool);
  }

  pruneVolumes(
    rules: PruneRules,
    opts: { readonly limit: number; readonly dryRun?: boolean },
  ): Promise<{ volumes: number; more: boolean }> {
    return this.#tx((c) => pruneVolumes(c, rules, opts));
  }
}
