/**
 * The statements of the SQLite volume ledger, prepared once on first use (a read-only ledger,
 * `poller volumes`, never prepares the writes). Grouped by the transition that runs them.
 */
import type Database from 'better-sqlite3';
import { CRASHED_RUN_CODE } from '../core/crash.js';
import type { VolumeState } from '../volume-ledger.js';
import type { MemberRow, VolumeRow, VolumeRunRow } from '../volume-rows.js';
import { prep } from './stmt.js';

const MEMBER_COLUMNS = 'volume_id, member, file_id, path, file_version, local_path, size_bytes, mtime_ms, landed_ms';

/** Landed files, membership, and the versions of a volume. */
function membershipStatements(db: Database.Database) {
  return {
    // Landed versions not yet looked at; superseded ones are left out (their bytes are a newer version's).
    landed: prep<
      { source: string; since: number; limit: number },
      { id: number; path: string; size_bytes: number; mtime_ms: number; local_path: string; fetched_ms: number }
    >(
      db,
      `SELECT f.id, f.path, f.size_bytes, f.mtime_ms, f.local_path, f.fetched_ms FROM files f
       WHERE f.source = @source AND f.fetched_ms >= @since AND f.local_path IS NOT NULL
         AND f.state IN ('fetched', 'processing', 'processed', 'failed', 'quarantined')
         AND NOT EXISTS (SELECT 1 FROM volume_files vf WHERE vf.file_id = f.id)
       ORDER BY f.fetched_ms, f.id LIMIT @limit`,
    ),
    examine: prep(db, 'INSERT OR IGNORE INTO volume_files (file_id, volume_id) VALUES (?, NULL)'),
    examinedVolume: prep<[number], { volume_id: number | null }>(
      db,
      'SELECT volume_id FROM volume_files WHERE file_id = ?',
    ),
    belongs: prep(
      db,
      `INSERT INTO volume_files (file_id, volume_id, member) VALUES (@file, @volume, @member)
       ON CONFLICT (file_id) DO UPDATE SET volume_id = excluded.volume_id, member = excluded.member`,
    ),
    insert: prep(
      db,
      `INSERT INTO volumes (source, key, version, digest, fields, state, first_member_ms, last_member_ms, updated_ms)
       VALUES (@source, @key, @version, '', @fields, 'collecting', @first, @last, @now)`,
    ),
    copyMembers: prep(
      db,
      `INSERT INTO volume_members (${MEMBER_COLUMNS})
       SELECT @to, member, file_id, path, file_version, local_path, size_bytes, mtime_ms, landed_ms
       FROM volume_members WHERE volume_id = @from AND forgotten = 0`,
    ),
    // Late members: files recorded against the old version for a member it did not have (a file
    // that replaced a member while collecting is not one); the latest per member wins.
    copyLate: prep(
      db,
      `INSERT INTO volume_members (${MEMBER_COLUMNS})
       SELECT @to, vf.member, f.id, f.path, f.size_bytes || ':' || f.mtime_ms, f.local_path, f.size_bytes, f.mtime_ms, f.fetched_ms
       FROM volume_files vf JOIN files f ON f.id = vf.file_id
       WHERE vf.volume_id = @from AND vf.member IS NOT NULL AND f.local_path IS NOT NULL
         AND vf.member NOT IN (SELECT member FROM volume_members WHERE volume_id = @from)
       ORDER BY f.fetched_ms DESC, f.id DESC
       ON CONFLICT (volume_id, member) DO NOTHING`,
    ),
    putMember: prep(
      db,
      `INSERT INTO volume_members (${MEMBER_COLUMNS})
       VALUES (@volume, @member, @file, @path, @version, @local, @size, @mtime, @landed)
       ON CONFLICT (volume_id, member) DO UPDATE SET file_id = excluded.file_id, path = excluded.path,
         file_version = excluded.file_version, local_path = excluded.local_path, size_bytes = excluded.size_bytes,
         mtime_ms = excluded.mtime_ms, landed_ms = excluded.landed_ms, forgotten = 0`,
    ),
    supersede: prep(
      db,
      `UPDATE volumes SET state = 'superseded', done_ms = @now, next_retry_ms = NULL, updated_ms = @now WHERE id = @id`,
    ),
    assessed: prep(
      db,
      `UPDATE volumes SET digest = @digest, first_member_ms = @first, last_member_ms = @last, state = @state,
         partial = @partial, closed_ms = @closed, updated_ms = @now WHERE id = @id`,
    ),
    quiet: prep<{ source: string; before: number }, { id: number }>(
      db,
      `SELECT id FROM volumes WHERE source = @source AND state = 'collecting' AND last_member_ms <= @before`,
    ),
    // `forget` of files: a collecting volume loses them; one past collecting keeps them, marked forgotten.
    forgetCollecting: prep<[string]>(
      db,
      `DELETE FROM volume_members WHERE file_id IN (SELECT value FROM json_each(?))
         AND volume_id IN (SELECT id FROM volumes WHERE state = 'collecting')`,
    ),
    forgetMembers: prep<[string]>(
      db,
      'UPDATE volume_members SET forgotten = 1 WHERE file_id IN (SELECT value FROM json_each(?))',
    ),
  };
}

/** Claims, runs and their end. */
function runStatements(db: Database.Database) {
  const due = `(state IN ('complete', 'partial') OR (state = 'failed' AND next_retry_ms <= @now))`;
  return {
    claimable: prep<{ source: string; now: number; limit: number }, { id: number }>(
      db,
      `SELECT id FROM volumes WHERE source = @source AND claimed_by IS NULL AND ${due}
       ORDER BY last_member_ms DESC LIMIT @limit`,
    ),
    claim: prep(
      db,
      `UPDATE volumes SET claimed_by = @owner, lease_until_ms = @lease, updated_ms = @now
       WHERE id = @id AND claimed_by IS NULL AND ${due}`,
    ),
    runs: prep<[number], VolumeRunRow>(db, 'SELECT * FROM volume_runs WHERE volume_id = ? ORDER BY plugin'),
    runStart: prep(
      db,
      `INSERT INTO volume_runs (volume_id, plugin, state, attempts, updated_ms) VALUES (@id, @plugin, 'running', 1, @now)
       ON CONFLICT (volume_id, plugin) DO UPDATE SET state = 'running', attempts = attempts + 1, updated_ms = @now
       RETURNING attempts`,
    ),
    runEnd: prep(
      db,
      `INSERT INTO volume_runs (volume_id, plugin, state, attempts, error_code, last_error, duration_ms, next_retry_ms,
         outputs, updated_ms)
       VALUES (@id, @plugin, @state, 0, @code, @error, @duration, @retry, @outputs, @now)
       ON CONFLICT (volume_id, plugin) DO UPDATE SET state = @state, error_code = @code, last_error = @error,
         duration_ms = @duration, next_retry_ms = @retry, outputs = @outputs, updated_ms = @now, attempts = attempts - @uncounted`,
    ),
    finished: prep(
      db,
      `UPDATE volumes SET state = @state, error_code = @code, last_error = @error, next_retry_ms = @retry,
         claimed_by = NULL, lease_until_ms = NULL, done_ms = @done, updated_ms = @now WHERE id = @id`,
    ),
  };
}

/** Recovery, retry and retention. */
function recoveryStatements(db: Database.Database) {
  return {
    claimed: prep<[], VolumeRow>(db, 'SELECT * FROM volumes WHERE claimed_by IS NOT NULL'),
    unclaim: prep(
      db,
      'UPDATE volumes SET claimed_by = NULL, lease_until_ms = NULL, updated_ms = @now WHERE id = @id AND claimed_by IS @owner',
    ),
    crashedRuns: prep(
      db,
      `UPDATE volume_runs SET state = 'failed', error_code = '${CRASHED_RUN_CODE}', last_error = @error, next_retry_ms = @now
       WHERE volume_id = @id AND state = 'running'`,
    ),
    retryable: prep<{ states: string; source: string | null; key: string | null }, { id: number }>(
      db,
      `SELECT id FROM volumes WHERE state IN (SELECT value FROM json_each(@states)) AND claimed_by IS NULL
         AND (@source IS NULL OR source = @source) AND (@key IS NULL OR key = @key)`,
    ),
    retryRun: prep(
      db,
      `UPDATE volume_runs SET state = 'failed', next_retry_ms = @now,
         attempts = CASE WHEN state = 'quarantined' THEN 0 ELSE attempts END WHERE volume_id = @id AND plugin = @plugin`,
    ),
    retryVolume: prep(
      db,
      `UPDATE volumes SET state = 'failed', next_retry_ms = @now, done_ms = NULL, updated_ms = @now WHERE id = @id`,
    ),
    // A failed version is owed only by its failed (or running) runs of plugins still configured.
    prunable: prep<
      { source: string; before: number; quarantinedBefore: number; configured: string | null; limit: number },
      { id: number }
    >(
      db,
      `SELECT id FROM volumes WHERE source = @source AND last_member_ms < @before AND claimed_by IS NULL
         AND (state IN ('processed', 'superseded', 'collecting') OR (state = 'quarantined' AND done_ms < @quarantinedBefore)
           OR (state = 'failed' AND @configured IS NOT NULL AND NOT EXISTS (
             SELECT 1 FROM volume_runs r WHERE r.volume_id = volumes.id AND r.state IN ('failed', 'running')
               AND r.plugin IN (SELECT value FROM json_each(@configured)))))
       LIMIT @limit`,
    ),
    deleteVolume: prep(db, 'DELETE FROM volumes WHERE id = ?'),
  };
}

/** Reads of the CLI, the status page and `/metrics`. */
function queryStatements(db: Database.Database) {
  return {
    byId: prep<[number], VolumeRow>(db, 'SELECT * FROM volumes WHERE id = ?'),
    latest: prep<[string, string], VolumeRow>(
      db,
      'SELECT * FROM volumes WHERE source = ? AND key = ? ORDER BY version DESC LIMIT 1',
    ),
    members: prep<[number], MemberRow>(db, 'SELECT * FROM volume_members WHERE volume_id = ? ORDER BY member'),
    query: prep<{ source: string | null; state: VolumeState | null; key: string | null; limit: number }, VolumeRow>(
      db,
      `SELECT * FROM volumes WHERE (@source IS NULL OR source = @source) AND (@state IS NULL OR state = @state)
         AND (@key IS NULL OR key = @key) ORDER BY last_member_ms DESC, id DESC LIMIT @limit`,
    ),
    ofPath: prep<[string, string, string], VolumeRow>(
      db,
      `SELECT v.* FROM volumes v WHERE v.source = ? AND (
         v.id IN (SELECT volume_id FROM volume_members WHERE path = ?)
         OR v.id IN (SELECT vf.volume_id FROM volume_files vf JOIN files f ON f.id = vf.file_id WHERE f.path = ?))
       ORDER BY v.version DESC`,
    ),
    counts: prep<[], { source: string; state: VolumeState; count: number; oldest: number | null }>(
      db,
      'SELECT source, state, COUNT(*) AS count, MIN(last_member_ms) AS oldest FROM volumes GROUP BY source, state ORDER BY source, state',
    ),
  };
}

export function prepareVolumeStatements(db: Database.Database) {
  return {
    ...membershipStatements(db),
    ...runStatements(db),
    ...recoveryStatements(db),
    ...queryStatements(db),
  };
}

export type VolumeStatements = ReturnType<typeof prepareVolumeStatements>;
