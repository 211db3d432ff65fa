/**
 * The SQLite ledger (better-sqlite3, WAL). Every state transition is one transaction; claims are
 * conditional UPDATEs, so two processes on one ledger file (a daemon and a run-once backfill)
 * never take the same version. better-sqlite3 is synchronous: each call is short and bounded.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { PermanentError } from '../../errors.js';
import type { MtimePrecision } from '../../sources/source.js';
import type {
  ActivitySlot,
  ClaimLost,
  EventFact,
  EventKind,
  FetchedItem,
  FetchFailedItem,
  FileQuery,
  FileRecord,
  FileState,
  Ledger,
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
  ProcessingResult,
  PruneResult,
  PruneRules,
  SourceStatus,
  VolumeEventKind,
} from '../ledger.js';
import { OutboxRouter, processingEvents } from '../outbox-routes.js';
import {
  CRASHED_RUN_MESSAGE,
  classifySighting,
  clip,
  dirOf,
  type FileRow,
  groupByDir,
  type LatestRow,
  listingDigest,
  processingVerdict,
  quietKey,
  type RunRow,
  readiness,
  runEndValues,
  SUPERSEDED_MESSAGE,
  sourceStatuses,
  toRecord,
  toRun,
} from '../rows.js';
import { MIGRATIONS } from './migrations.js';
import { SqliteVolumeLedger } from './sqlite-volume-ledger.js';

/** `latest` in raw mode: [id, size, mtime, precision, state, stage, sightings, next_retry, etag]. */
type LatestTuple = [
  number,
  number,
  number,
  MtimePrecision,
  FileState,
  'fetch' | 'process' | null,
  number,
  number | null,
  string,
];

export interface SqliteLedgerOptions {
  /** How long a writer waits for another process's transaction. @default 10_000 */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

export class SqliteLedger implements Ledger {
  readonly #db: Database.Database;
  readonly #stmts;
  readonly volumes: SqliteVolumeLedger;
  /**
   * Per source, path → the version key of a row in a quiet state: a daemon re-polling an
   * unchanged 100k-entry directory then skips SQLite for those entries. Dropped whenever another
   * connection commits (PRAGMA data_version) and on our own forget/retry.
   */
  readonly #quiet = new Map<string, Map<string, string>>();
  #dataVersion = -1;
  /** Outbox routes; none means no event is written. */
  readonly #outbox = new OutboxRouter();

  constructor(file: string, opts: SqliteLedgerOptions = {}) {
    if (!opts.readonly) mkdirSync(path.dirname(file), { recursive: true });
    this.#db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    this.#db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 10_000}`);
    if (!opts.readonly) {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      // Off while migrating: a step that rebuilds `files` must not cascade into plugin_runs.
      this.#db.pragma('foreign_keys = OFF');
      this.#migrate();
      this.#db.pragma('foreign_keys = ON');
    } else {
      const version = this.#db.pragma('user_version', { simple: true }) as number;
      if (version !== MIGRATIONS.length) {
        this.#db.close();
        throw new PermanentError(
          'POLLER_LEDGER_SCHEMA_MISMATCH',
          `ledger schema version ${version}, this poller reads ${MIGRATIONS.length}; run \`poller check\` or start the daemon once to migrate it`,
        );
      }
    }
    const db = this.#db;
    // Volume transitions write their events on this connection, in their own transactions.
    this.volumes = new SqliteVolumeLedger(db, (kind, source, volumeId, fact, nowMs) =>
      this.#emitVolume(kind, source, volumeId, fact, nowMs),
    );
    this.#stmts = {
      // Narrow columns, raw rows: this runs once per listed entry (100k per cycle on big directories).
      latest: db
        .prepare<[string, string], LatestTuple>(
          `SELECT id, size_bytes, mtime_ms, mtime_precision, state, stage, sightings, next_retry_ms, etag
           FROM files WHERE source = ? AND path = ? ORDER BY id DESC LIMIT 1`,
        )
        .raw(true),
      insert: db.prepare(
        `INSERT OR IGNORE INTO files (source, path, size_bytes, mtime_ms, mtime_precision, etag, state, stage, sightings,
           first_seen_ms, last_seen_ms, error_code, last_error, updated_ms)
         VALUES (@source, @path, @size, @mtime, @precision, @etag, @state, NULL, 1, @now, @now, @code, @error, @now)`,
      ),
      regrow: db.prepare(
        `UPDATE files SET size_bytes = @size, mtime_ms = @mtime, mtime_precision = @precision, etag = @etag, sightings = 1,
           last_seen_ms = @now, updated_ms = @now WHERE id = @id AND state = 'seen'`,
      ),
      sighted: db.prepare(
        `UPDATE files SET sightings = sightings + 1, last_seen_ms = @now, updated_ms = @now WHERE id = @id`,
      ),
      byId: db.prepare<[number], FileRow>('SELECT * FROM files WHERE id = ?'),
      digestGet: db.prepare<[string, string], { digest: string; rejected: number }>(
        'SELECT digest, rejected FROM listing_digests WHERE source = ? AND dir = ?',
      ),
      digestPut: db.prepare(
        `INSERT INTO listing_digests (source, dir, digest, rejected, stored_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (source, dir) DO UPDATE SET digest = excluded.digest, rejected = excluded.rejected,
           stored_ms = excluded.stored_ms`,
      ),
      digestDrop: db.prepare('DELETE FROM listing_digests WHERE source = ? AND dir = ?'),
      claimFetch: db.prepare(
        `UPDATE files SET state = 'fetching', claimed_by = @owner, lease_until_ms = @lease, updated_ms = @now
         WHERE id = @id AND (state = 'seen' OR (state = 'failed' AND stage = 'fetch' AND next_retry_ms <= @now))`,
      ),
      renew: db.prepare(
        `UPDATE files SET lease_until_ms = @lease WHERE id = @id AND claimed_by = @owner AND state IN ('fetching', 'processing')`,
      ),
      fetched: db.prepare(
        `UPDATE files SET state = 'fetched', stage = NULL, local_path = @localPath, fetched_ms = @now, claimed_by = NULL,
           lease_until_ms = NULL, error_code = NULL, last_error = NULL, next_retry_ms = NULL,
           fetch_attempts = fetch_attempts + 1, updated_ms = @now
         WHERE id = @id AND claimed_by = @owner AND state = 'fetching'`,
      ),
      fetchedDone: db.prepare(
        `UPDATE files SET state = 'processed', stage = NULL, local_path = @localPath, fetched_ms = @now, done_ms = @now,
           claimed_by = NULL, lease_until_ms = NULL, error_code = NULL, last_error = NULL, next_retry_ms = NULL,
           fetch_attempts = fetch_attempts + 1, updated_ms = @now
         WHERE id = @id AND claimed_by = @owner AND state = 'fetching'`,
      ),
      fetchFailed: db.prepare(
        `UPDATE files SET state = @state, stage = 'fetch', error_code = @code, last_error = @error, next_retry_ms = @retry,
           fetch_attempts = fetch_attempts + @counted, claimed_by = NULL, lease_until_ms = NULL, updated_ms = @now,
           done_ms = CASE WHEN @state = 'quarantined' THEN @now ELSE done_ms END
         WHERE id = @id AND claimed_by = @owner AND state = 'fetching'`,
      ),
      release: db.prepare(
        `UPDATE files SET state = 'seen', sightings = 1, claimed_by = NULL, lease_until_ms = NULL, updated_ms = @now
         WHERE id = @id AND claimed_by = @owner AND state = 'fetching'`,
      ),
      processable: db.prepare<{ source: string | null; now: number; limit: number }, FileRow>(
        `SELECT * FROM files WHERE (@source IS NULL OR source = @source)
           AND (state = 'fetched' OR (state = 'failed' AND stage = 'process' AND next_retry_ms <= @now))
         ORDER BY mtime_ms DESC LIMIT @limit`,
      ),
      claimProcess: db.prepare(
        `UPDATE files SET state = 'processing', claimed_by = @owner, lease_until_ms = @lease, updated_ms = @now
         WHERE id = @id AND (state = 'fetched' OR (state = 'failed' AND stage = 'process' AND next_retry_ms <= @now))`,
      ),
      runs: db.prepare<[number], RunRow>('SELECT * FROM plugin_runs WHERE file_id = ? ORDER BY plugin'),
      // Many ids in one statement: a JSON array of ids, expanded by SQLite.
      runsOfMany: db.prepare<[string], RunRow>(
        'SELECT * FROM plugin_runs WHERE file_id IN (SELECT value FROM json_each(?)) ORDER BY file_id, plugin',
      ),
      byIds: db.prepare<[string], FileRow>('SELECT * FROM files WHERE id IN (SELECT value FROM json_each(?))'),
      runStart: db.prepare(
        `INSERT INTO plugin_runs (file_id, plugin, state, attempts, updated_ms) VALUES (@id, @plugin, 'running', 1, @now)
         ON CONFLICT (file_id, plugin) DO UPDATE SET state = 'running', attempts = attempts + 1, updated_ms = @now
         RETURNING attempts`,
      ),
      runEnd: db.prepare(
        `UPDATE plugin_runs SET state = @state, error_code = @code, last_error = @error, duration_ms = @duration,
           next_retry_ms = @retry, outputs = @outputs, updated_ms = @now, attempts = attempts - @uncounted
         WHERE file_id = @id AND plugin = @plugin`,
      ),
      processed: db.prepare(
        `UPDATE files SET state = @state, stage = @stage, error_code = @code, last_error = @error, next_retry_ms = @retry,
           claimed_by = NULL, lease_until_ms = NULL, done_ms = @done, updated_ms = @now
         WHERE id = @id AND claimed_by = @owner AND state = 'processing'`,
      ),
      superseded: db.prepare(
        `UPDATE files SET state = 'superseded', stage = NULL, claimed_by = NULL, lease_until_ms = NULL, done_ms = @now,
           error_code = 'POLLER_LANDING_SUPERSEDED', last_error = @error, next_retry_ms = NULL, updated_ms = @now
         WHERE id = @id AND claimed_by = @owner AND state = 'processing'`,
      ),
      stale: db.prepare<[], FileRow>(`SELECT * FROM files WHERE state IN ('fetching', 'processing')`),
      unclaimFetch: db.prepare(
        `UPDATE files SET state = 'seen', claimed_by = NULL, lease_until_ms = NULL, updated_ms = @now WHERE id = @id AND state = 'fetching' AND claimed_by IS @owner`,
      ),
      unclaimProcess: db.prepare(
        `UPDATE files SET state = 'fetched', claimed_by = NULL, lease_until_ms = NULL, updated_ms = @now WHERE id = @id AND state = 'processing' AND claimed_by IS @owner`,
      ),
      poll: db.prepare(
        `INSERT INTO sources (name, display_url, last_poll_ms, last_success_ms, last_error) VALUES (@name, @url, @now, @success, @error)
         ON CONFLICT (name) DO UPDATE SET display_url = @url, last_poll_ms = @now,
           last_success_ms = COALESCE(@success, last_success_ms), last_error = @error`,
      ),
      eventInsert: db.prepare(
        `INSERT INTO events (id, sink, kind, source, file_id, at_ms, fact) VALUES (@id, @sink, @kind, @source, @fileId, @at, @fact)`,
      ),
      volumeEventInsert: db.prepare(
        `INSERT INTO events (id, sink, kind, source, file_id, volume_id, at_ms, fact)
         VALUES (@id, @sink, @kind, @source, 0, @volumeId, @at, @fact)`,
      ),
      priorVersion: db.prepare<[string, string, number], { one: number }>(
        `SELECT 1 AS one FROM files WHERE source = ? AND path = ? AND id < ? AND fetched_ms IS NOT NULL LIMIT 1`,
      ),
      eventsPending: db.prepare<
        [string, number],
        {
          seq: number;
          id: string;
          sink: string;
          kind: EventKind;
          source: string;
          file_id: number;
          volume_id: number | null;
          at_ms: number;
          fact: string;
        }
      >(
        `SELECT seq, id, sink, kind, source, file_id, volume_id, at_ms, fact FROM events WHERE sink = ? AND sent_ms IS NULL ORDER BY seq LIMIT ?`,
      ),
      eventSent: db.prepare(`UPDATE events SET sent_ms = @now WHERE seq = @seq AND sink = @sink AND sent_ms IS NULL`),
      prunable: db.prepare<
        { source: string; before: number; quarantinedBefore: number; limit: number },
        { id: number; path: string }
      >(
        `SELECT id, path FROM files WHERE source = @source AND mtime_ms < @before
           AND (state IN ('processed', 'superseded', 'rejected', 'seen')
             OR (state = 'failed' AND stage = 'fetch')
             OR (state = 'quarantined' AND done_ms < @quarantinedBefore))
         LIMIT @limit`,
      ),
      runsOf: db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM plugin_runs WHERE file_id = ?'),
      deleteFile: db.prepare('DELETE FROM files WHERE id = ?'),
      pruneDigests: db.prepare('DELETE FROM listing_digests WHERE source = ? AND stored_ms < ?'),
      countFiles: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM files'),
      countRuns: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM plugin_runs'),
      liveFetches: db.prepare<[], { id: number; sizeBytes: number; mtimeMs: number }>(
        `SELECT id, size_bytes AS sizeBytes, mtime_ms AS mtimeMs FROM files WHERE state IN ('fetching', 'seen', 'failed')`,
      ),
    };
  }

  #migrate(): void {
    // The version is read inside each write transaction: two processes starting on a new ledger
    // at once must not both apply the same step.
    for (let step = 0; step <= MIGRATIONS.length; step++) {
      const done = this.#db
        .transaction(() => {
          const current = this.#db.pragma('user_version', { simple: true }) as number;
          if (current > MIGRATIONS.length) {
            throw new PermanentError(
              'POLLER_LEDGER_SCHEMA_TOO_NEW',
              `ledger schema version ${current} is newer than this poller understands (${MIGRATIONS.length}); upgrade poller`,
            );
          }
          if (current === MIGRATIONS.length) return true;
          this.#db.exec(MIGRATIONS[current] as string);
          this.#db.pragma(`user_version = ${current + 1}`);
          return false;
        })
        .immediate();
      if (done) return;
    }
  }

  async observe(source: string, observations: readonly Observation[], opts: ObserveOptions): Promise<ObserveResult> {
    const s = this.#stmts;
    const counts = { listed: observations.length, new: 0, changed: 0, unchanged: 0, settling: 0, rejected: 0 };
    const readyIds: number[] = [];
    const now = opts.nowMs;
    const isReady = readiness(opts);
    let ready: FileRecord[] = [];
    const rollback = new Error('dry run');
    try {
      this.#db
        .transaction(() => {
          for (const [dir, group] of groupByDir(observations)) {
            const digest = listingDigest(group);
            const stored = s.digestGet.get(source, dir);
            if (stored?.digest === digest) {
              counts.unchanged += group.length - stored.rejected;
              counts.rejected += stored.rejected;
              continue;
            }
            const rejectedBefore = counts.rejected;
            if (this.#observeAll(source, group, now, isReady, counts, readyIds)) {
              s.digestPut.run(source, dir, digest, counts.rejected - rejectedBefore, now);
            } else if (stored) {
              s.digestDrop.run(source, dir);
            }
          }
          ready = readyIds.map((id) => toRecord(s.byId.get(id) as FileRow));
          if (opts.dryRun) throw rollback;
        })
        .immediate();
    } catch (err) {
      if (err !== rollback) throw err;
    }
    return { ready, counts };
  }

  #observeAll(
    source: string,
    observations: readonly Observation[],
    now: number,
    isReady: (mtimeMs: number, sightings: number) => boolean,
    counts: { listed: number; new: number; changed: number; unchanged: number; settling: number; rejected: number },
    readyIds: number[],
  ): boolean {
    const s = this.#stmts;
    const quiet = this.#quietCache(source);
    // Whether every entry was unchanged and needs nothing: then the listing's digest is kept.
    let allQuiet = true;
    for (const o of observations) {
      const { entry } = o;
      const key = quietKey(entry);
      if (o.rejectReason === undefined && quiet.get(entry.path) === key) {
        counts.unchanged++;
        continue;
      }
      const raw = s.latest.get(source, entry.path);
      const row: LatestRow | undefined = raw && {
        id: raw[0],
        size_bytes: raw[1],
        mtime_ms: raw[2],
        mtime_precision: raw[3],
        state: raw[4],
        stage: raw[5],
        sightings: raw[6],
        next_retry_ms: raw[7],
        etag: raw[8],
      };
      const version = {
        size: entry.sizeBytes,
        mtime: entry.mtimeMs,
        precision: entry.mtimePrecision,
        etag: entry.etag ?? '',
      };
      const sighting = classifySighting(o, row, now);
      switch (sighting.kind) {
        case 'insert-rejected':
          s.insert.run({
            source,
            path: entry.path,
            ...version,
            state: 'rejected',
            now,
            code: 'POLLER_LANDING_UNSAFE_PATH',
            error: o.rejectReason,
          });
          counts.new++;
          counts.rejected++;
          allQuiet = false;
          break;
        case 'rejected':
          counts.rejected++;
          break;
        case 'insert': {
          // New file, or a new version of a file we already took further than 'seen'.
          allQuiet = false;
          quiet.delete(entry.path);
          const info = s.insert.run({
            source,
            path: entry.path,
            ...version,
            state: 'seen',
            now,
            code: null,
            error: null,
          });
          if (sighting.isNew) counts.new++;
          else counts.changed++;
          if (info.changes === 1 && isReady(entry.mtimeMs, 1)) readyIds.push(Number(info.lastInsertRowid));
          else counts.settling++;
          break;
        }
        case 'regrow':
          allQuiet = false;
          s.regrow.run({ id: (row as LatestRow).id, ...version, now });
          counts.changed++;
          if (isReady(entry.mtimeMs, 1)) readyIds.push((row as LatestRow).id);
          else counts.settling++;
          break;
        case 'sighted': {
          const r = row as LatestRow;
          allQuiet = false;
          s.sighted.run({ id: r.id, now });
          if (isReady(r.mtime_ms, r.sightings + 1)) readyIds.push(r.id);
          else counts.settling++;
          break;
        }
        case 'unchanged':
          counts.unchanged++;
          if (sighting.quiet) {
            // Bounded: a feed of new names every few minutes would otherwise grow it for months.
            if (quiet.size >= QUIET_CACHE_MAX) quiet.clear();
            quiet.set(entry.path, key);
          } else allQuiet = false;
          if (sighting.due) readyIds.push((row as LatestRow).id);
          break;
      }
    }
    return allQuiet;
  }

  /** The quiet-version cache of a source, emptied first if another connection has committed. */
  #quietCache(source: string): Map<string, string> {
    const version = this.#db.pragma('data_version', { simple: true }) as number;
    if (version !== this.#dataVersion) {
      this.#quiet.clear();
      this.#dataVersion = version;
    }
    let m = this.#quiet.get(source);
    if (!m) {
      m = new Map();
      this.#quiet.set(source, m);
    }
    return m;
  }

  async claimForFetch(
    ids: readonly number[],
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
  ): Promise<FileRecord[]> {
    return this.#claimEach(this.#stmts.claimFetch, () => ids, { owner, lease: leaseUntilMs, now: nowMs });
  }

  /** Run a conditional claim UPDATE per id in one write transaction; return the rows this owner got. */
  #claimEach(
    claim: Database.Statement,
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
    const rows = new Map(this.#stmts.byIds.all(JSON.stringify(got)).map((r) => [r.id, r]));
    return got.map((id) => toRecord(rows.get(id) as FileRow));
  }

  async renewLeases(ids: readonly number[], owner: string, leaseUntilMs: number): Promise<ClaimLost> {
    const lost: number[] = [];
    this.#db.transaction(() => {
      for (const id of ids) if (this.#stmts.renew.run({ id, owner, lease: leaseUntilMs }).changes !== 1) lost.push(id);
    })();
    return lost;
  }

  async markFetched(items: readonly FetchedItem[], owner: string, nowMs: number): Promise<ClaimLost> {
    const lost: number[] = [];
    this.#db.transaction(() => {
      for (const { id, localPath, done, sha512 } of items) {
        const stmt = done ? this.#stmts.fetchedDone : this.#stmts.fetched;
        if (stmt.run({ id, owner, localPath, now: nowMs }).changes !== 1) {
          lost.push(id);
          continue;
        }
        if (!this.#outbox.enabled) continue;
        const row = this.#stmts.byId.get(id) as FileRow;
        if (this.#sinks('fetched', row.source).length > 0) {
          const update = this.#stmts.priorVersion.get(row.source, row.path, id) !== undefined;
          this.#emit('fetched', row, { localPath, sha512: sha512 ?? null, update }, nowMs);
        }
        // No plugin matches: the file is processed in this same write.
        if (done) this.#emit('processed', row, { localPath, outputs: [] }, nowMs);
      }
    })();
    return lost;
  }

  async markFetchFailed(items: readonly FetchFailedItem[], owner: string, nowMs: number): Promise<ClaimLost> {
    const lost: number[] = [];
    this.#db.transaction(() => {
      for (const { id, failure: f } of items) {
        const changes = this.#stmts.fetchFailed.run({
          id,
          owner,
          state: f.quarantine ? 'quarantined' : 'failed',
          code: f.errorCode,
          error: clip(f.message),
          retry: f.quarantine ? null : (f.nextRetryMs ?? nowMs),
          counted: f.notCounted ? 0 : 1,
          now: nowMs,
        }).changes;
        if (changes !== 1) {
          lost.push(id);
          continue;
        }
        if (!this.#outbox.enabled || (f.notCounted && !f.quarantine)) continue;
        const row = this.#stmts.byId.get(id) as FileRow;
        this.#emit(
          f.quarantine ? 'quarantined' : 'failed',
          row,
          { stage: 'fetch', errorCode: f.errorCode, message: row.last_error, attempts: row.fetch_attempts },
          nowMs,
        );
      }
    })();
    return lost;
  }

  async releaseFetch(ids: readonly number[], owner: string, nowMs: number): Promise<void> {
    this.#db.transaction(() => {
      for (const id of ids) this.#stmts.release.run({ id, owner, now: nowMs });
    })();
  }

  async claimForProcessing(
    source: string | undefined,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<FileRecord[]> {
    const s = this.#stmts;
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
    return this.#claimEach(this.#stmts.claimProcess, () => ids, { owner, lease: leaseUntilMs, now: nowMs });
  }

  async markSuperseded(ids: readonly number[], owner: string, nowMs: number): Promise<ClaimLost> {
    const error = SUPERSEDED_MESSAGE;
    const lost: number[] = [];
    this.#db.transaction(() => {
      for (const id of ids)
        if (this.#stmts.superseded.run({ id, owner, now: nowMs, error }).changes !== 1) lost.push(id);
    })();
    return lost;
  }

  async pluginRuns(fileIds: readonly number[]): Promise<Map<number, PluginRunRecord[]>> {
    const out = new Map<number, PluginRunRecord[]>(fileIds.map((id) => [id, []]));
    if (fileIds.length === 0) return out;
    for (const row of this.#stmts.runsOfMany.all(JSON.stringify(fileIds))) out.get(row.file_id)?.push(toRun(row));
    return out;
  }

  async markPluginRunning(runs: readonly PluginRunStart[], nowMs: number): Promise<number[]> {
    const attempts: number[] = [];
    this.#db.transaction(() => {
      for (const { fileId, plugin } of runs) {
        const row = this.#stmts.runStart.get({ id: fileId, plugin, now: nowMs }) as { attempts: number };
        attempts.push(row.attempts);
      }
    })();
    return attempts;
  }

  async finishProcessing(
    results: readonly ProcessingResult[],
    owner: string,
    nowMs: number,
  ): Promise<Array<FileState | 'claim-lost'>> {
    const states: Array<FileState | 'claim-lost'> = [];
    this.#db
      .transaction(() => {
        for (const r of results) {
          try {
            // A nested transaction is a savepoint: a lost claim undoes only that file's writes.
            states.push(this.#db.transaction(() => this.#finishOne(r.id, owner, r.outcomes, nowMs))());
          } catch (err) {
            if (!(err instanceof ClaimLostSignal)) throw err;
            states.push('claim-lost');
          }
        }
      })
      .immediate();
    return states;
  }

  /** One file's processing outcome; runs inside `finishProcessing`'s transaction. */
  #finishOne(id: number, owner: string, outcomes: readonly PluginOutcome[], nowMs: number): FileState {
    const s = this.#stmts;
    for (const o of outcomes) s.runEnd.run({ id, plugin: o.plugin, now: nowMs, ...runEndValues(o, nowMs) });
    // Runs of earlier passes count too: a file is processed only when every matching plugin succeeded.
    const runs = s.runs.all(id);
    const v = processingVerdict(outcomes, runs, nowMs);
    const state = v.state;
    const changes = s.processed.run({
      id,
      owner,
      state,
      stage: v.stage,
      code: v.code,
      error: v.error,
      retry: v.retry,
      done: v.done,
      now: nowMs,
    }).changes;
    if (changes !== 1) throw new ClaimLostSignal(id);
    if (this.#outbox.enabled) this.#emitProcessing(id, state, outcomes, runs, nowMs);
    return state;
  }

  async recoverStale(
    nowMs: number,
    isOwnerGone: (owner: string) => boolean,
  ): Promise<{ fetches: number; processing: number }> {
    this.#quiet.clear();
    const s = this.#stmts;
    let fetches = 0;
    let processing = 0;
    this.#db
      .transaction(() => {
        for (const row of s.stale.all()) {
          const expired = row.lease_until_ms === null || row.lease_until_ms <= nowMs;
          if (!expired && !(row.claimed_by !== null && isOwnerGone(row.claimed_by))) continue;
          if (row.state === 'fetching')
            fetches += s.unclaimFetch.run({ id: row.id, owner: row.claimed_by, now: nowMs }).changes;
          else processing += s.unclaimProcess.run({ id: row.id, owner: row.claimed_by, now: nowMs }).changes;
        }
        // A plugin run left 'running' by a process that died was not recorded as a success: it
        // runs again. Its attempt was counted when it started, so a file whose run kills the
        // poller every time is quarantined after maxAttempts instead of crash-looping.
        this.#db
          .prepare(`UPDATE plugin_runs SET state = 'failed', error_code = 'POLLER_PLUGIN_CRASHED',
             last_error = @error, next_retry_ms = @now
           WHERE state = 'running' AND file_id IN (SELECT id FROM files WHERE state = 'fetched')`)
          .run({ now: nowMs, error: CRASHED_RUN_MESSAGE });
      })
      .immediate();
    return { fetches, processing };
  }

  async scheduleRetry(
    f: { source?: string; plugin?: string; path?: string; includeQuarantined: boolean },
    nowMs: number,
  ): Promise<number[]> {
    this.#quiet.clear();
    // Quarantined fetches become due again: their directories must be diffed entry by entry.
    this.#db.prepare('DELETE FROM listing_digests').run();
    const states = f.includeQuarantined ? `('failed', 'quarantined')` : `('failed')`;
    const where = ['state IN ' + states];
    const params: Record<string, unknown> = { now: nowMs };
    if (f.source) {
      where.push('source = @source');
      params['source'] = f.source;
    }
    if (f.path) {
      where.push('path = @path');
      params['path'] = f.path;
    }
    const ids: number[] = [];
    this.#db
      .transaction(() => {
        const rows = this.#db
          .prepare<Record<string, unknown>, FileRow>(`SELECT * FROM files WHERE ${where.join(' AND ')}`)
          .all(params);
        for (const row of rows) {
          if (row.stage === 'process') {
            const runs = this.#stmts.runs
              .all(row.id)
              .filter(
                (r) =>
                  (r.state === 'failed' || (f.includeQuarantined && r.state === 'quarantined')) &&
                  (!f.plugin || r.plugin === f.plugin),
              );
            if (runs.length === 0) continue;
            for (const r of runs) {
              this.#db
                .prepare(
                  `UPDATE plugin_runs SET state = 'failed', next_retry_ms = @now, attempts = CASE WHEN state = 'quarantined' THEN 0 ELSE attempts END WHERE file_id = @id AND plugin = @plugin`,
                )
                .run({ now: nowMs, id: row.id, plugin: r.plugin });
            }
          } else if (f.plugin) {
            continue;
          }
          this.#db
            .prepare(
              `UPDATE files SET state = 'failed', next_retry_ms = @now, fetch_attempts = CASE WHEN state = 'quarantined' AND stage = 'fetch' THEN 0 ELSE fetch_attempts END, updated_ms = @now WHERE id = @id`,
            )
            .run({ now: nowMs, id: row.id });
          ids.push(row.id);
        }
      })
      .immediate();
    return ids;
  }

  async forget(f: { source: string; path?: string; state?: FileState }): Promise<number> {
    this.#quiet.clear();
    this.#db.prepare('DELETE FROM listing_digests WHERE source = ?').run(f.source);
    const where = ['source = @source', `state NOT IN ('fetching', 'processing')`];
    if (f.path) where.push('path = @path');
    if (f.state) where.push('state = @state');
    const params = { source: f.source, path: f.path ?? null, state: f.state ?? null };
    return this.#db
      .transaction(() => {
        const ids = this.#db
          .prepare<Record<string, unknown>, { id: number }>(`SELECT id FROM files WHERE ${where.join(' AND ')}`)
          .all(params)
          .map((r) => r.id);
        // Their volume memberships go in the same transaction: a forgotten file reruns its volume.
        this.volumes.forgetFiles(ids);
        return this.#db.prepare(`DELETE FROM files WHERE ${where.join(' AND ')}`).run(params).changes;
      })
      .immediate();
  }

  async get(id: number): Promise<FileRecord | undefined> {
    const row = this.#stmts.byId.get(id);
    return row ? toRecord(row) : undefined;
  }

  async history(source: string, p: string): Promise<FileRecord[]> {
    return this.#db
      .prepare<[string, string], FileRow>('SELECT * FROM files WHERE source = ? AND path = ? ORDER BY id DESC')
      .all(source, p)
      .map(toRecord);
  }

  async files(q: FileQuery): Promise<FileRecord[]> {
    const where: string[] = [];
    if (q.source) where.push('source = @source');
    if (q.state) where.push('state = @state');
    if (q.path) where.push(`(path = @path OR path LIKE '%' || @path || '%')`);
    const sql = `SELECT * FROM files ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
    return this.#db
      .prepare<Record<string, unknown>, FileRow>(sql)
      .all({ source: q.source ?? null, state: q.state ?? null, path: q.path ?? null, limit: q.limit ?? 100 })
      .map(toRecord);
  }

  async recordPoll(
    source: string,
    displayUrl: string,
    ok: boolean,
    error: string | null,
    nowMs: number,
  ): Promise<void> {
    this.#stmts.poll.run({
      name: source,
      url: displayUrl,
      now: nowMs,
      success: ok ? nowMs : null,
      error: error && clip(error),
    });
  }

  async status(): Promise<SourceStatus[]> {
    const db = this.#db;
    const sources = db
      .prepare<
        [],
        {
          name: string;
          display_url: string | null;
          last_poll_ms: number | null;
          last_success_ms: number | null;
          last_error: string | null;
        }
      >(
        // The sources of file rows by a loose index scan (one index seek per source): a plain
        // DISTINCT reads every row of the index, ~0.35 s on a million rows, on each status page refresh.
        `WITH RECURSIVE seen(source) AS (
           SELECT MIN(source) FROM files
           UNION ALL SELECT (SELECT MIN(source) FROM files WHERE source > seen.source) FROM seen WHERE seen.source IS NOT NULL)
         SELECT name, display_url, last_poll_ms, last_success_ms, last_error FROM sources
         UNION SELECT source, NULL, NULL, NULL, NULL FROM seen WHERE source IS NOT NULL AND source NOT IN (SELECT name FROM sources)
         ORDER BY name`,
      )
      .all();
    const counts = db
      .prepare<[], { source: string; state: FileState; n: number }>(
        'SELECT source, state, COUNT(*) n FROM files GROUP BY source, state',
      )
      .all();
    // Per source, down the (source, mtime_ms) index from the newest until a landed row: usually the
    // first. A GROUP BY over the states read every such row (4.5 s on a million rows).
    const newestOf = db.prepare<[string], { m: number }>(
      `SELECT mtime_ms m FROM files WHERE source = ? AND state IN ('fetched', 'processing', 'processed', 'failed')
         AND local_path IS NOT NULL ORDER BY mtime_ms DESC LIMIT 1`,
    );
    const newest = sources.map((s) => ({ source: s.name, m: newestOf.get(s.name)?.m ?? null }));
    return sourceStatuses(sources, counts, newest);
  }

  setOutbox(routes: readonly OutboxRoute[]): void {
    this.#outbox.set(routes);
  }

  #sinks(kind: EventKind, source: string): readonly string[] {
    return this.#outbox.sinks(kind, source);
  }

  /** One outbox row per interested sink, in the caller's transaction; one id for all of them. */
  #emit(kind: EventKind, row: FileRow, extra: Partial<EventFact>, nowMs: number): void {
    const sinks = this.#sinks(kind, row.source);
    if (sinks.length === 0) return;
    const fact: EventFact = { path: row.path, sizeBytes: row.size_bytes, mtimeMs: row.mtime_ms, ...extra };
    const text = JSON.stringify(fact);
    const id = randomUUID();
    for (const sink of sinks)
      this.#stmts.eventInsert.run({ id, sink, kind, source: row.source, fileId: row.id, at: nowMs, fact: text });
  }

  /** One outbox row per sink that wants this volume event, in the volume ledger's transaction. */
  #emitVolume(kind: VolumeEventKind, source: string, volumeId: number, fact: EventFact, nowMs: number): void {
    if (!this.#outbox.enabled) return;
    const sinks = this.#sinks(kind, source);
    if (sinks.length === 0) return;
    const text = JSON.stringify(fact);
    const id = randomUUID();
    for (const sink of sinks)
      this.#stmts.volumeEventInsert.run({ id, sink, kind, source, volumeId, at: nowMs, fact: text });
  }

  /** Events of one file's processing outcome (inside its savepoint: a lost claim writes none). */
  #emitProcessing(
    id: number,
    state: FileState,
    outcomes: readonly PluginOutcome[],
    runs: readonly RunRow[],
    nowMs: number,
  ): void {
    const row = this.#stmts.byId.get(id) as FileRow;
    for (const e of processingEvents(row, state, outcomes, runs)) this.#emit(e.kind, row, e.extra, nowMs);
  }

  async pendingEvents(sink: string, limit: number): Promise<OutboxEvent[]> {
    return this.#stmts.eventsPending.all(sink, limit).map((r) => ({
      seq: r.seq,
      id: r.id,
      sink: r.sink,
      kind: r.kind,
      source: r.source,
      fileId: r.file_id,
      volumeId: r.volume_id,
      atMs: r.at_ms,
      fact: JSON.parse(r.fact) as EventFact,
    }));
  }

  async markEventsSent(sink: string, seqs: readonly number[], nowMs: number): Promise<void> {
    this.#db.transaction(() => {
      for (const seq of seqs) this.#stmts.eventSent.run({ seq, sink, now: nowMs });
    })();
  }

  async outboxStats(): Promise<OutboxStats[]> {
    // Pending rows only: the partial index answers it without touching the sent history.
    const rows = this.#db
      .prepare<[], { sink: string; pending: number; oldest: number | null }>(
        'SELECT sink, COUNT(*) AS pending, MIN(at_ms) AS oldest FROM events WHERE sent_ms IS NULL GROUP BY sink',
      )
      .all();
    return this.#outbox.stats(rows);
  }

  async pruneSentEvents(beforeMs: number): Promise<number> {
    return this.#db.prepare('DELETE FROM events WHERE sent_ms IS NOT NULL AND sent_ms < ?').run(beforeMs).changes;
  }

  async prune(
    rules: PruneRules,
    opts: { readonly limit: number; readonly nowMs: number; readonly dryRun?: boolean },
  ): Promise<PruneResult> {
    const s = this.#stmts;
    let files = 0;
    let pluginRuns = 0;
    let more = false;
    this.#db
      .transaction(() => {
        let budget = opts.limit;
        for (const w of rules.windows) {
          if (budget <= 0) {
            more = true;
            break;
          }
          // One row past the budget tells whether another batch is needed.
          const rows = s.prunable.all({
            source: w.source,
            before: w.mtimeBeforeMs,
            quarantinedBefore: rules.quarantinedBeforeMs,
            limit: budget + 1,
          });
          if (rows.length > budget) more = true;
          const dirs = new Set<string>();
          for (const { id, path: p } of rows.slice(0, budget)) {
            pluginRuns += (s.runsOf.get(id) as { n: number }).n;
            if (!opts.dryRun) s.deleteFile.run(id);
            dirs.add(dirOf(p));
            files++;
          }
          // A digest covering a deleted row must not answer for its directory again.
          if (!opts.dryRun) for (const dir of dirs) s.digestDrop.run(w.source, dir);
          budget -= Math.min(rows.length, budget);
          // A digest not rewritten for a whole window (stored_ms is a listing time, compared with the
          // same cut-off) describes a directory that is no longer listed differently; if it still is
          // listed, the next listing diffs it entry by entry and stores it again.
          if (!opts.dryRun) s.pruneDigests.run(w.source, w.mtimeBeforeMs);
        }
      })
      .immediate();
    // Paths of deleted rows must not be answered from memory; the cache refills from the next listing.
    if (files > 0 && !opts.dryRun) this.#quiet.clear();
    return { files, pluginRuns, more };
  }

  async activity(nowMs: number, slotMs: number, slots: number): Promise<ActivitySlot[]> {
    // fetched_ms in (now - slots·slotMs, now] maps to slot 0 … slots-1. The CAST floors: a bound
    // JS number may arrive as a REAL, and REAL division would give fractional slots.
    return this.#db
      .prepare<{ now: number; slot: number; since: number }, ActivitySlot>(
        `SELECT source, CAST((@now - fetched_ms) / @slot AS INTEGER) AS slot, COUNT(*) AS files, SUM(size_bytes) AS bytes
         FROM files WHERE fetched_ms > @since AND fetched_ms <= @now
         GROUP BY source, slot ORDER BY source, slot`,
      )
      .all({
        now: Math.floor(nowMs),
        slot: Math.max(1, Math.floor(slotMs)),
        since: Math.floor(nowMs - slots * slotMs),
      });
  }

  async stats(): Promise<LedgerStats> {
    const s = this.#stmts;
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
    return {
      fileRows: (s.countFiles.get() as { n: number }).n,
      pluginRunRows: (s.countRuns.get() as { n: number }).n,
      bytes,
    };
  }

  async liveFetches(): Promise<Array<{ id: number; sizeBytes: number; mtimeMs: number }>> {
    return this.#stmts.liveFetches.all();
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

/** Paths per source held in the quiet-version cache: a few 100k-entry directories' worth. */
const QUIET_CACHE_MAX = 500_000;

/** Thrown inside a savepoint to undo one file's writes whose claim was lost. */
class ClaimLostSignal extends Error {
  constructor(readonly id: number) {
    super(`claim lost for file ${id}`);
  }
}
