/**
 * The SQLite ledger (better-sqlite3, WAL). Every state transition is one transaction; claims are
 * conditional UPDATEs, so two processes on one ledger file (a daemon and a run-once backfill)
 * never take the same version. better-sqlite3 is synchronous: each call is short and bounded.
 * The decisions are the planners of `core/`; the statements are prepared once (`statements.ts`).
 */
import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { CRASHED_RUN_MESSAGE, isStaleClaim } from '../core/crash.js';
import { dirsOf, PruneBudget } from '../core/prune.js';
import { planRetry, retryStates } from '../core/retry.js';
import { clip, processingVerdict, runEndValues } from '../core/verdict.js';
import type { Ledger } from '../ledger.js';
import type {
  ActivitySlot,
  ClaimLost,
  EventFact,
  FetchedItem,
  FetchFailedItem,
  FileQuery,
  FileRecord,
  FileState,
  ForgetFilter,
  LedgerStats,
  Observation,
  ObserveOptions,
  ObserveResult,
  OutboxEvent,
  OutboxRoute,
  OutboxStats,
  PluginOutcome,
  PluginRunRecord,
  PluginRunStart,
  PluginRunSuccess,
  ProcessingResult,
  ProductEventKind,
  PruneResult,
  PruneRules,
  RetryFilter,
  SourceStatus,
} from '../records.js';
import {
  type AbsenceOptions,
  type AbsenceResult,
  type DeletionResult,
  goneFact,
  type ListingCoverage,
  type RemovedUpstream,
  type UpstreamDeletion,
} from '../removed-upstream.js';
import { type FileRow, SUPERSEDED_MESSAGE, sourceStatuses, toRecord, toRun } from '../rows.js';
import { SqliteAbsences } from './absences.js';
import { openDatabase } from './database.js';
import { QuietCache, recordListing } from './listing.js';
import { SqliteOutbox } from './outbox.js';
import { ClaimLostSignal, eachInSavepoint } from './savepoints.js';
import { SqliteVolumeLedger } from './sqlite-volume-ledger.js';
import { prepareStatements, type Statements } from './statements.js';
import { prep, type Stmt } from './stmt.js';

export interface SqliteLedgerOptions {
  /** How long a writer waits for another process's transaction. @default 10_000 */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

export class SqliteLedger implements Ledger, RemovedUpstream {
  readonly #db: Database.Database;
  readonly #s: Statements;
  readonly volumes: SqliteVolumeLedger;
  readonly #quiet: QuietCache;
  /** Outbox routes and rows; no routes means no event is written. */
  readonly #outbox: SqliteOutbox;
  readonly #absences: SqliteAbsences;
  /** Dynamic queries (`files`), prepared once per shape. */
  readonly #byShape = new Map<string, Stmt<[Record<string, unknown>], FileRow>>();

  constructor(file: string, opts: SqliteLedgerOptions = {}) {
    this.#db = openDatabase(file, opts);
    this.#s = prepareStatements(this.#db);
    this.#quiet = new QuietCache(this.#db);
    this.#outbox = new SqliteOutbox(this.#db, this.#s);
    this.#absences = new SqliteAbsences(this.#db, (row, nowMs) => {
      if (this.#outbox.enabled) this.#outbox.emit('gone', row, goneFact(row), nowMs);
    });
    // Volume transitions write their events on this connection, in their own transactions.
    this.volumes = new SqliteVolumeLedger(this.#db, (kind, source, volumeId, fact, nowMs) =>
      this.#outbox.emitVolume(kind, source, volumeId, fact, nowMs),
    );
  }

  async observe(source: string, observations: readonly Observation[], opts: ObserveOptions): Promise<ObserveResult> {
    return recordListing(this.#db, this.#s, this.#quiet, source, observations, opts);
  }

  async claimForFetch(
    ids: readonly number[],
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
  ): Promise<FileRecord[]> {
    return this.#claimEach(this.#s.claimFetch, () => ids, { owner, lease: leaseUntilMs, now: nowMs });
  }

  /** Run a conditional claim UPDATE per id in one write transaction; return the rows this owner got. */
  #claimEach(
    claim: Stmt,
    ids: () => readonly number[],
    params: { owner: string; lease: number; now: number },
  ): FileRecord[] {
    const got: number[] = [];
    this.#db
      .transaction(() => {
        for (const id of ids()) if (claim.run({ id, ...params }).changes === 1) got.push(id);
      })
      .immediate();
    if (got.length === 0) return [];
    const rows = new Map(this.#s.byIds.all(JSON.stringify(got)).map((r) => [r.id, r]));
    return got.map((id) => toRecord(rows.get(id) as FileRow));
  }

  /** Run `write` per id in one transaction; the ids it changed no row for are the lost claims. */
  #eachClaimed<T>(items: readonly T[], idOf: (item: T) => number, write: (item: T) => boolean): ClaimLost {
    const lost: number[] = [];
    this.#db.transaction(() => {
      for (const item of items) if (!write(item)) lost.push(idOf(item));
    })();
    return lost;
  }

  async renewLeases(ids: readonly number[], owner: string, leaseUntilMs: number): Promise<ClaimLost> {
    const renew = this.#s.renew;
    return this.#eachClaimed(
      ids,
      (id) => id,
      (id) => renew.run({ id, owner, lease: leaseUntilMs }).changes === 1,
    );
  }

  async markFetched(items: readonly FetchedItem[], owner: string, nowMs: number): Promise<ClaimLost> {
    const s = this.#s;
    return this.#eachClaimed(
      items,
      (i) => i.id,
      ({ id, localPath, done, sha512 }) => {
        const stmt = done ? s.fetchedDone : s.fetched;
        if (stmt.run({ id, owner, localPath, now: nowMs }).changes !== 1) return false;
        if (!this.#outbox.enabled) return true;
        const row = s.byId.get(id) as FileRow;
        if (this.#outbox.wants('fetched', row.source)) {
          const update = s.priorVersion.get(row.source, row.path, id) !== undefined;
          this.#outbox.emit('fetched', row, { localPath, sha512: sha512 ?? null, update }, nowMs);
        }
        // No plugin matches: the file is processed in this same write.
        if (done) this.#outbox.emit('processed', row, { localPath, outputs: [] }, nowMs);
        return true;
      },
    );
  }

  async markFetchFailed(items: readonly FetchFailedItem[], owner: string, nowMs: number): Promise<ClaimLost> {
    const s = this.#s;
    return this.#eachClaimed(
      items,
      (i) => i.id,
      ({ id, failure: f }) => {
        const changes = s.fetchFailed.run({
          id,
          owner,
          state: f.quarantine ? 'quarantined' : 'failed',
          code: f.errorCode,
          error: clip(f.message),
          retry: f.quarantine ? null : (f.nextRetryMs ?? nowMs),
          counted: f.notCounted ? 0 : 1,
          now: nowMs,
        }).changes;
        if (changes !== 1) return false;
        if (!this.#outbox.enabled || (f.notCounted && !f.quarantine)) return true;
        const row = s.byId.get(id) as FileRow;
        const fact = {
          stage: 'fetch' as const,
          errorCode: f.errorCode,
          message: row.last_error,
          attempts: row.fetch_attempts,
        };
        this.#outbox.emit(f.quarantine ? 'quarantined' : 'failed', row, fact, nowMs);
        return true;
      },
    );
  }

  async releaseFetch(ids: readonly number[], owner: string, nowMs: number): Promise<void> {
    this.#db.transaction(() => {
      for (const id of ids) this.#s.release.run({ id, owner, now: nowMs });
    })();
  }

  async claimForProcessing(
    source: string | undefined,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<FileRecord[]> {
    const s = this.#s;
    // The candidates are read inside the claiming transaction, so no other writer slips between.
    const candidates = () => s.processable.all({ source: source ?? null, now: nowMs, limit }).map((r) => r.id);
    return this.#claimEach(s.claimProcess, candidates, { owner, lease: leaseUntilMs, now: nowMs });
  }

  async claimIdsForProcessing(
    ids: readonly number[],
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
  ): Promise<FileRecord[]> {
    return this.#claimEach(this.#s.claimProcess, () => ids, { owner, lease: leaseUntilMs, now: nowMs });
  }

  async markSuperseded(ids: readonly number[], owner: string, nowMs: number): Promise<ClaimLost> {
    const superseded = this.#s.superseded;
    const error = SUPERSEDED_MESSAGE;
    return this.#eachClaimed(
      ids,
      (id) => id,
      (id) => superseded.run({ id, owner, now: nowMs, error }).changes === 1,
    );
  }

  async pluginRuns(fileIds: readonly number[]): Promise<Map<number, PluginRunRecord[]>> {
    const out = new Map<number, PluginRunRecord[]>(fileIds.map((id) => [id, []]));
    if (fileIds.length === 0) return out;
    for (const row of this.#s.runsOfMany.all(JSON.stringify(fileIds))) out.get(row.file_id)?.push(toRun(row));
    return out;
  }

  async markPluginRunning(runs: readonly PluginRunStart[], nowMs: number): Promise<number[]> {
    const attempts: number[] = [];
    this.#db.transaction(() => {
      for (const { fileId, plugin } of runs) {
        const row = this.#s.runStart.get({ id: fileId, plugin, now: nowMs }) as { attempts: number };
        attempts.push(row.attempts);
      }
    })();
    return attempts;
  }

  async markPluginSucceeded(runs: readonly PluginRunSuccess[], owner: string, nowMs: number): Promise<void> {
    const s = this.#s;
    this.#db.transaction(() => {
      for (const r of runs)
        s.runSucceeded.run({
          id: r.fileId,
          plugin: r.plugin,
          owner,
          now: nowMs,
          duration: Math.round(r.durationMs),
          outputs: JSON.stringify(r.outputs),
        });
    })();
  }

  async finishProcessing(
    results: readonly ProcessingResult[],
    owner: string,
    nowMs: number,
  ): Promise<Array<FileState | 'claim-lost'>> {
    return eachInSavepoint(this.#db, results, (r) => this.#finishOne(r.id, owner, r.outcomes, nowMs));
  }

  /** One file's processing outcome; runs inside `finishProcessing`'s transaction. */
  #finishOne(id: number, owner: string, outcomes: readonly PluginOutcome[], nowMs: number): FileState {
    const s = this.#s;
    for (const o of outcomes) s.runEnd.run({ id, plugin: o.plugin, now: nowMs, ...runEndValues(o, nowMs) });
    // Runs of earlier passes count too: a file is processed only when every matching plugin succeeded.
    const runs = s.runs.all(id);
    const v = processingVerdict(outcomes, runs, nowMs);
    if (s.processed.run({ id, owner, ...v, now: nowMs }).changes !== 1)
      throw new ClaimLostSignal(`claim lost for file ${id}`);
    if (this.#outbox.enabled) this.#outbox.emitProcessing(id, v.state, outcomes, runs, nowMs);
    return v.state;
  }

  async recoverStale(
    nowMs: number,
    isOwnerGone: (owner: string) => boolean,
  ): Promise<{ fetches: number; processing: number }> {
    this.#quiet.clear();
    const s = this.#s;
    let fetches = 0;
    let processing = 0;
    this.#db
      .transaction(() => {
        for (const row of s.stale.all()) {
          if (!isStaleClaim(row, nowMs, isOwnerGone)) continue;
          const back = { id: row.id, owner: row.claimed_by, now: nowMs };
          if (row.state === 'fetching') fetches += s.unclaimFetch.run(back).changes;
          else processing += s.unclaimProcess.run(back).changes;
        }
        s.crashedRuns.run({ now: nowMs, error: CRASHED_RUN_MESSAGE });
      })
      .immediate();
    return { fetches, processing };
  }

  async scheduleRetry(f: RetryFilter, nowMs: number): Promise<number[]> {
    this.#quiet.clear();
    const s = this.#s;
    return this.#db
      .transaction(() => {
        // Quarantined fetches become due again: their directories must be diffed entry by entry.
        s.digestDropAll.run();
        const states = JSON.stringify(retryStates(f.includeQuarantined));
        const rows = s.retryable.all({ states, source: f.source ?? null, path: f.path ?? null });
        const plan = planRetry(rows, (id) => s.runs.all(id), f);
        for (const r of plan.runs) s.retryRun.run({ now: nowMs, id: r.fileId, plugin: r.plugin });
        for (const id of plan.fileIds) s.retryFile.run({ now: nowMs, id });
        return plan.fileIds;
      })
      .immediate();
  }

  async recordAbsences(source: string, coverage: ListingCoverage, opts: AbsenceOptions): Promise<AbsenceResult> {
    const result = this.#absences.recordAbsences(source, coverage, opts);
    // A version listed again must be looked at by the next listing.
    if (result.back > 0) this.#quiet.clear();
    return result;
  }

  async recordDeletion(source: string, deletion: UpstreamDeletion, opts: { nowMs: number }): Promise<DeletionResult> {
    return this.#absences.recordDeletion(source, deletion, opts.nowMs);
  }

  async forget(f: ForgetFilter): Promise<number> {
    this.#quiet.clear();
    const s = this.#s;
    return this.#db
      .transaction(() => {
        s.digestDropSource.run(f.source);
        const ids = s.forgettable
          .all({ source: f.source, path: f.path ?? null, state: f.state ?? null })
          .map((r) => r.id);
        // Their volume memberships go in the same transaction: a forgotten file reruns its volume.
        this.volumes.forgetFiles(ids);
        return s.deleteFiles.run(JSON.stringify(ids)).changes;
      })
      .immediate();
  }

  async get(id: number): Promise<FileRecord | undefined> {
    const row = this.#s.byId.get(id);
    return row ? toRecord(row) : undefined;
  }

  async history(source: string, p: string): Promise<FileRecord[]> {
    return this.#s.history.all(source, p).map(toRecord);
  }

  async files(q: FileQuery): Promise<FileRecord[]> {
    const where: string[] = [];
    if (q.source) where.push('source = @source');
    if (q.state) where.push('state = @state');
    if (q.path) where.push(`(path = @path OR path LIKE '%' || @path || '%')`);
    // Only the filters given, so that SQLite can use the index of each; one statement per shape.
    const sql = `SELECT * FROM files ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
    let stmt = this.#byShape.get(sql);
    if (!stmt) {
      stmt = prep<Record<string, unknown>, FileRow>(this.#db, sql);
      this.#byShape.set(sql, stmt);
    }
    return stmt
      .all({ source: q.source ?? null, state: q.state ?? null, path: q.path ?? null, limit: q.limit ?? 100 })
      .map(toRecord);
  }

  async recordPoll(source: string, url: string, ok: boolean, error: string | null, nowMs: number): Promise<void> {
    const success = ok ? nowMs : null;
    this.#s.poll.run({ name: source, url, now: nowMs, success, error: error && clip(error) });
  }

  async status(): Promise<SourceStatus[]> {
    const s = this.#s;
    const sources = s.sources.all();
    const newest = sources.map((x) => ({ source: x.name, m: s.newestOf.get(x.name)?.m ?? null }));
    return sourceStatuses(sources, s.stateCounts.all(), newest);
  }

  setOutbox(routes: readonly OutboxRoute[]): void {
    this.#outbox.setOutbox(routes);
  }

  pendingEvents(sink: string, limit: number): Promise<OutboxEvent[]> {
    return this.#outbox.pendingEvents(sink, limit);
  }

  markEventsSent(sink: string, seqs: readonly number[], nowMs: number): Promise<void> {
    return this.#outbox.markEventsSent(sink, seqs, nowMs);
  }

  outboxStats(): Promise<OutboxStats[]> {
    return this.#outbox.outboxStats();
  }

  pruneSentEvents(beforeMs: number): Promise<number> {
    return this.#outbox.pruneSentEvents(beforeMs);
  }

  emitProductEvent(kind: ProductEventKind, source: string, fact: EventFact, nowMs: number): Promise<void> {
    return this.#outbox.emitProductEvent(kind, source, fact, nowMs);
  }

  async prune(
    rules: PruneRules,
    opts: { readonly limit: number; readonly nowMs: number; readonly dryRun?: boolean },
  ): Promise<PruneResult> {
    const s = this.#s;
    const budget = new PruneBudget(opts.limit);
    let files = 0;
    let pluginRuns = 0;
    this.#db
      .transaction(() => {
        for (const w of rules.windows) {
          if (!budget.open()) break;
          const found = s.prunable.all({
            source: w.source,
            before: w.mtimeBeforeMs,
            quarantinedBefore: rules.quarantinedBeforeMs,
            limit: budget.ask,
          });
          const batch = budget.take(found);
          for (const { id } of batch) pluginRuns += (s.runsOf.get(id) as { n: number }).n;
          files += batch.length;
          if (opts.dryRun) continue;
          for (const { id } of batch) s.deleteFile.run(id);
          // A digest covering a deleted row must not answer for its directory again.
          for (const dir of dirsOf(batch)) s.digestDrop.run(w.source, dir);
          // A digest not rewritten for a whole window (stored_ms is a listing time, compared with the
          // same cut-off) describes a directory that is no longer listed differently; if it still is
          // listed, the next listing diffs it entry by entry and stores it again.
          s.pruneDigests.run(w.source, w.mtimeBeforeMs);
        }
      })
      .immediate();
    // Paths of deleted rows must not be answered from memory; the cache refills from the next listing.
    if (files > 0 && !opts.dryRun) this.#quiet.clear();
    return { files, pluginRuns, more: budget.more };
  }

  async activity(nowMs: number, slotMs: number, slots: number): Promise<ActivitySlot[]> {
    return this.#s.activity.all({
      now: Math.floor(nowMs),
      slot: Math.max(1, Math.floor(slotMs)),
      since: Math.floor(nowMs - slots * slotMs),
    });
  }

  async stats(): Promise<LedgerStats> {
    const name = this.#db.name;
    let bytes: number | null = null;
    if (name !== ':memory:') {
      bytes = 0;
      for (const f of [name, `${name}-wal`]) {
        try {
          bytes += statSync(f).size;
        } catch {
          // No WAL file yet (or it was checkpointed away).
        }
      }
    }
    const fileRows = (this.#s.countFiles.get() as { n: number }).n;
    return { fileRows, pluginRunRows: (this.#s.countRuns.get() as { n: number }).n, bytes };
  }

  async liveFetches(): Promise<Array<{ id: number; sizeBytes: number; mtimeMs: number }>> {
    return this.#s.liveFetches.all();
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
