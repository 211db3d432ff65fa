/**
 * Every statement of the SQLite file ledger, prepared once when the ledger opens (a statement
 * prepared in a loop is compiled again for each row). Grouped by the transition that runs it;
 * the state guards come from `core/guards.ts`.
 */
import type Database from 'better-sqlite3';
import type { MtimePrecision } from '../../sources/source.js';
import { crashedRunsSql } from '../core/crash.js';
import { CLAIMED_SQL, fetchDueSql, LANDED_SQL, LIVE_FETCH_SQL, processDueSql, prunableSql } from '../core/guards.js';
import type { FileState } from '../records.js';
import type { EventRow, FileRow, RunRow, SourceRow } from '../rows.js';
import { prep, prepRaw } from './stmt.js';

/** `latest` in raw mode: [id, size, mtime, precision, state, stage, sightings, next_retry, etag]. */
export type LatestTuple = [
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

/** A listing: the latest row per path (narrow and raw: once per listed entry), inserts, sightings, digests. */
function listingStatements(db: Database.Database) {
  return {
    latest: prepRaw<[string, string], LatestTuple>(
      db,
      `SELECT id, size_bytes, mtime_ms, mtime_precision, state, stage, sightings, next_retry_ms, etag
       FROM files WHERE source = ? AND path = ? ORDER BY id DESC LIMIT 1`,
    ),
    insert: prep(
      db,
      `INSERT OR IGNORE INTO files (source, path, size_bytes, mtime_ms, mtime_precision, etag, state, stage, sightings,
         first_seen_ms, last_seen_ms, error_code, last_error, updated_ms)
       VALUES (@source, @path, @size, @mtime, @precision, @etag, @state, NULL, 1, @now, @now, @code, @error, @now)`,
    ),
    regrow: prep(
      db,
      `UPDATE files SET size_bytes = @size, mtime_ms = @mtime, mtime_precision = @precision, etag = @etag, sightings = 1,
         last_seen_ms = @now, updated_ms = @now WHERE id = @id AND state = 'seen'`,
    ),
    sighted: prep(
      db,
      `UPDATE files SET sightings = sightings + 1, last_seen_ms = @now, updated_ms = @now WHERE id = @id`,
    ),
    digestGet: prep<[string, string], { digest: string; rejected: number }>(
      db,
      'SELECT digest, rejected FROM listing_digests WHERE source = ? AND dir = ?',
    ),
    digestPut: prep(
      db,
      `INSERT INTO listing_digests (source, dir, digest, rejected, stored_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (source, dir) DO UPDATE SET digest = excluded.digest, rejected = excluded.rejected,
         stored_ms = excluded.stored_ms`,
    ),
    digestDrop: prep(db, 'DELETE FROM listing_digests WHERE source = ? AND dir = ?'),
    digestDropSource: prep(db, 'DELETE FROM listing_digests WHERE source = ?'),
    digestDropAll: prep(db, 'DELETE FROM listing_digests'),
  };
}

/** Claims, landing and release of fetches. */
function fetchStatements(db: Database.Database) {
  const landed = `stage = NULL, local_path = @localPath, fetched_ms = @now, claimed_by = NULL, lease_until_ms = NULL,
    error_code = NULL, last_error = NULL, next_retry_ms = NULL, fetch_attempts = fetch_attempts + 1, updated_ms = @now`;
  const mine = `WHERE id = @id AND claimed_by = @owner AND state = 'fetching'`;
  return {
    claimFetch: prep(
      db,
      `UPDATE files SET state = 'fetching', claimed_by = @owner, lease_until_ms = @lease, updated_ms = @now
       WHERE id = @id AND ${fetchDueSql('@now')}`,
    ),
    renew: prep(
      db,
      `UPDATE files SET lease_until_ms = @lease WHERE id = @id AND claimed_by = @owner AND ${CLAIMED_SQL}`,
    ),
    fetched: prep(db, `UPDATE files SET state = 'fetched', ${landed} ${mine}`),
    fetchedDone: prep(db, `UPDATE files SET state = 'processed', done_ms = @now, ${landed} ${mine}`),
    fetchFailed: prep(
      db,
      `UPDATE files SET state = @state, stage = 'fetch', error_code = @code, last_error = @error, next_retry_ms = @retry,
         fetch_attempts = fetch_attempts + @counted, claimed_by = NULL, lease_until_ms = NULL, updated_ms = @now,
         done_ms = CASE WHEN @state = 'quarantined' THEN @now ELSE done_ms END ${mine}`,
    ),
    release: prep(
      db,
      `UPDATE files SET state = 'seen', sightings = 1, claimed_by = NULL, lease_until_ms = NULL, updated_ms = @now ${mine}`,
    ),
    priorVersion: prep<[string, string, number], { one: number }>(
      db,
      `SELECT 1 AS one FROM files WHERE source = ? AND path = ? AND id < ? AND fetched_ms IS NOT NULL LIMIT 1`,
    ),
  };
}

/** Processing claims, plugin runs and their end. */
function processStatements(db: Database.Database) {
  const mine = `WHERE id = @id AND claimed_by = @owner AND state = 'processing'`;
  return {
    processable: prep<{ source: string | null; now: number; limit: number }, FileRow>(
      db,
      `SELECT * FROM files WHERE (@source IS NULL OR source = @source) AND ${processDueSql('@now')}
       ORDER BY mtime_ms DESC LIMIT @limit`,
    ),
    claimProcess: prep(
      db,
      `UPDATE files SET state = 'processing', claimed_by = @owner, lease_until_ms = @lease, updated_ms = @now
       WHERE id = @id AND ${processDueSql('@now')}`,
    ),
    runs: prep<[number], RunRow>(db, 'SELECT * FROM plugin_runs WHERE file_id = ? ORDER BY plugin'),
    // Many ids in one statement: a JSON array of ids, expanded by SQLite.
    runsOfMany: prep<[string], RunRow>(
      db,
      'SELECT * FROM plugin_runs WHERE file_id IN (SELECT value FROM json_each(?)) ORDER BY file_id, plugin',
    ),
    runStart: prep(
      db,
      `INSERT INTO plugin_runs (file_id, plugin, state, attempts, updated_ms) VALUES (@id, @plugin, 'running', 1, @now)
       ON CONFLICT (file_id, plugin) DO UPDATE SET state = 'running', attempts = attempts + 1, updated_ms = @now
       RETURNING attempts`,
    ),
    runEnd: prep(
      db,
      `UPDATE plugin_runs SET state = @state, error_code = @code, last_error = @error, duration_ms = @duration,
         next_retry_ms = @retry, outputs = @outputs, updated_ms = @now, attempts = attempts - @uncounted
       WHERE file_id = @id AND plugin = @plugin`,
    ),
    runSucceeded: prep(
      db,
      `UPDATE plugin_runs SET state = 'succeeded', error_code = NULL, last_error = NULL, duration_ms = @duration,
         next_retry_ms = NULL, outputs = @outputs, updated_ms = @now
       WHERE file_id = @id AND plugin = @plugin AND state = 'running'
         AND EXISTS (SELECT 1 FROM files WHERE id = @id AND state = 'processing' AND claimed_by IS @owner)`,
    ),
    processed: prep(
      db,
      `UPDATE files SET state = @state, stage = @stage, error_code = @code, last_error = @error, next_retry_ms = @retry,
         claimed_by = NULL, lease_until_ms = NULL, done_ms = @done, updated_ms = @now ${mine}`,
    ),
    superseded: prep(
      db,
      `UPDATE files SET state = 'superseded', stage = NULL, claimed_by = NULL, lease_until_ms = NULL, done_ms = @now,
         error_code = 'POLLER_LANDING_SUPERSEDED', last_error = @error, next_retry_ms = NULL, updated_ms = @now ${mine}`,
    ),
  };
}

/** Recovery after a crash, `retry` and `forget`. */
function recoveryStatements(db: Database.Database) {
  return {
    stale: prep<[], FileRow>(db, `SELECT * FROM files WHERE ${CLAIMED_SQL}`),
    unclaimFetch: prep(
      db,
      `UPDATE files SET state = 'seen', claimed_by = NULL, lease_until_ms = NULL, updated_ms = @now
       WHERE id = @id AND state = 'fetching' AND claimed_by IS @owner`,
    ),
    unclaimProcess: prep(
      db,
      `UPDATE files SET state = 'fetched', claimed_by = NULL, lease_until_ms = NULL, updated_ms = @now
       WHERE id = @id AND state = 'processing' AND claimed_by IS @owner`,
    ),
    crashedRuns: prep(db, crashedRunsSql('@error', '@now')),
    retryable: prep<{ states: string; source: string | null; path: string | null }, FileRow>(
      db,
      `SELECT * FROM files WHERE state IN (SELECT value FROM json_each(@states))
         AND (@source IS NULL OR source = @source) AND (@path IS NULL OR path = @path)`,
    ),
    retryRun: prep(
      db,
      `UPDATE plugin_runs SET state = 'failed', next_retry_ms = @now,
         attempts = CASE WHEN state = 'quarantined' THEN 0 ELSE attempts END WHERE file_id = @id AND plugin = @plugin`,
    ),
    retryFile: prep(
      db,
      `UPDATE files SET state = 'failed', next_retry_ms = @now,
         fetch_attempts = CASE WHEN state = 'quarantined' AND stage = 'fetch' THEN 0 ELSE fetch_attempts END,
         updated_ms = @now WHERE id = @id`,
    ),
    forgettable: prep<{ source: string; path: string | null; state: FileState | null }, { id: number }>(
      db,
      `SELECT id FROM files WHERE source = @source AND NOT ${CLAIMED_SQL}
         AND (@path IS NULL OR path = @path) AND (@state IS NULL OR state = @state)`,
    ),
  };
}

/** Outbox rows. */
function outboxStatements(db: Database.Database) {
  return {
    eventInsert: prep(
      db,
      `INSERT INTO events (id, sink, kind, source, file_id, at_ms, fact) VALUES (@id, @sink, @kind, @source, @fileId, @at, @fact)`,
    ),
    volumeEventInsert: prep(
      db,
      `INSERT INTO events (id, sink, kind, source, file_id, volume_id, at_ms, fact)
       VALUES (@id, @sink, @kind, @source, 0, @volumeId, @at, @fact)`,
    ),
    eventsPending: prep<[string, number], EventRow>(
      db,
      `SELECT seq, id, sink, kind, source, file_id, volume_id, at_ms, fact FROM events
       WHERE sink = ? AND sent_ms IS NULL ORDER BY seq LIMIT ?`,
    ),
    eventSent: prep(db, `UPDATE events SET sent_ms = @now WHERE seq = @seq AND sink = @sink AND sent_ms IS NULL`),
    // Pending rows only: the partial index answers it without touching the sent history.
    outboxPending: prep<[], { sink: string; pending: number; oldest: number | null }>(
      db,
      'SELECT sink, COUNT(*) AS pending, MIN(at_ms) AS oldest FROM events WHERE sent_ms IS NULL GROUP BY sink',
    ),
    pruneSent: prep<[number]>(db, 'DELETE FROM events WHERE sent_ms IS NOT NULL AND sent_ms < ?'),
  };
}

/** Retention. */
function retentionStatements(db: Database.Database) {
  return {
    prunable: prep<
      { source: string; before: number; quarantinedBefore: number; limit: number },
      { id: number; path: string }
    >(
      db,
      `SELECT id, path FROM files WHERE source = @source AND mtime_ms < @before AND ${prunableSql('@quarantinedBefore')}
       LIMIT @limit`,
    ),
    runsOf: prep<[number], { n: number }>(db, 'SELECT count(*) AS n FROM plugin_runs WHERE file_id = ?'),
    deleteFile: prep(db, 'DELETE FROM files WHERE id = ?'),
    deleteFiles: prep<[string]>(db, 'DELETE FROM files WHERE id IN (SELECT value FROM json_each(?))'),
    pruneDigests: prep(db, 'DELETE FROM listing_digests WHERE source = ? AND stored_ms < ?'),
  };
}

/** Reads of the CLI, the status page and `/metrics`. */
function queryStatements(db: Database.Database) {
  return {
    byId: prep<[number], FileRow>(db, 'SELECT * FROM files WHERE id = ?'),
    byIds: prep<[string], FileRow>(db, 'SELECT * FROM files WHERE id IN (SELECT value FROM json_each(?))'),
    history: prep<[string, string], FileRow>(db, 'SELECT * FROM files WHERE source = ? AND path = ? ORDER BY id DESC'),
    poll: prep(
      db,
      `INSERT INTO sources (name, display_url, last_poll_ms, last_success_ms, last_error) VALUES (@name, @url, @now, @success, @error)
       ON CONFLICT (name) DO UPDATE SET display_url = @url, last_poll_ms = @now,
         last_success_ms = COALESCE(@success, last_success_ms), last_error = @error`,
    ),
    // The sources of file rows by a loose index scan (one index seek per source): a plain
    // DISTINCT reads every row of the index, ~0.35 s on a million rows, on each status page refresh.
    sources: prep<[], SourceRow>(
      db,
      `WITH RECURSIVE seen(source) AS (
         SELECT MIN(source) FROM files
         UNION ALL SELECT (SELECT MIN(source) FROM files WHERE source > seen.source) FROM seen WHERE seen.source IS NOT NULL)
       SELECT name, display_url, last_poll_ms, last_success_ms, last_error FROM sources
       UNION SELECT source, NULL, NULL, NULL, NULL FROM seen WHERE source IS NOT NULL AND source NOT IN (SELECT name FROM sources)
       ORDER BY name`,
    ),
    stateCounts: prep<[], { source: string; state: FileState; n: number }>(
      db,
      'SELECT source, state, COUNT(*) n FROM files GROUP BY source, state',
    ),
    // Per source, down the (source, mtime_ms) index from the newest until a landed row: usually the
    // first. A GROUP BY over the states read every such row (4.5 s on a million rows).
    newestOf: prep<[string], { m: number }>(
      db,
      `SELECT mtime_ms m FROM files WHERE source = ? AND ${LANDED_SQL} ORDER BY mtime_ms DESC LIMIT 1`,
    ),
    // fetched_ms in (now - slots·slotMs, now] maps to slot 0 … slots-1. The CAST floors: a bound
    // JS number may arrive as a REAL, and REAL division would give fractional slots.
    activity: prep<
      { now: number; slot: number; since: number },
      { source: string; slot: number; files: number; bytes: number }
    >(
      db,
      `SELECT source, CAST((@now - fetched_ms) / @slot AS INTEGER) AS slot, COUNT(*) AS files, SUM(size_bytes) AS bytes
       FROM files WHERE fetched_ms > @since AND fetched_ms <= @now
       GROUP BY source, slot ORDER BY source, slot`,
    ),
    countFiles: prep<[], { n: number }>(db, 'SELECT count(*) AS n FROM files'),
    countRuns: prep<[], { n: number }>(db, 'SELECT count(*) AS n FROM plugin_runs'),
    liveFetches: prep<[], { id: number; sizeBytes: number; mtimeMs: number }>(
      db,
      `SELECT id, size_bytes AS sizeBytes, mtime_ms AS mtimeMs FROM files WHERE ${LIVE_FETCH_SQL}`,
    ),
  };
}

export function prepareStatements(db: Database.Database) {
  return {
    ...listingStatements(db),
    ...fetchStatements(db),
    ...processStatements(db),
    ...recoveryStatements(db),
    ...outboxStatements(db),
    ...retentionStatements(db),
    ...queryStatements(db),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
