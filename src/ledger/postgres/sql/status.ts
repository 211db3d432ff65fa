/** Reads for `status`, the status page and `/metrics`: sources, activity, size, resumable fetches; and a poll's record. */

import { LANDED_SQL, LIVE_FETCH_SQL } from '../../core/guards.js';
import { clip } from '../../core/verdict.js';
import type { ActivitySlot, FileState, LedgerStats, SourceStatus } from '../../records.js';
import { type SourceRow, sourceStatuses } from '../../rows.js';
import type { Q } from '../pool.js';

export async function recordPoll(
  c: Q,
  source: string,
  displayUrl: string,
  ok: boolean,
  error: string | null,
  nowMs: number,
): Promise<void> {
  await c.query(
    `INSERT INTO sources (name, display_url, last_poll_ms, last_success_ms, last_error) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (name) DO UPDATE SET display_url = $2, last_poll_ms = $3,
       last_success_ms = COALESCE($4, sources.last_success_ms), last_error = $5`,
    [source, displayUrl, nowMs, ok ? nowMs : null, error && clip(error)],
  );
}

export async function status(c: Q): Promise<SourceStatus[]> {
  const [sources, counts, newest] = await Promise.all([
    c.query<SourceRow>(
      `SELECT name, display_url, last_poll_ms, last_success_ms, last_error FROM sources
       UNION SELECT DISTINCT source, NULL::text, NULL::bigint, NULL::bigint, NULL::text FROM files WHERE source NOT IN (SELECT name FROM sources)
       ORDER BY name`,
    ),
    c.query<{ source: string; state: FileState; n: number }>(
      'SELECT source, state, count(*) AS n FROM files GROUP BY source, state',
    ),
    c.query<{ source: string; m: number | null }>(
      `SELECT source, max(mtime_ms) AS m FROM files WHERE ${LANDED_SQL} GROUP BY source`,
    ),
  ]);
  return sourceStatuses(sources.rows, counts.rows, newest.rows);
}

export async function activity(c: Q, nowMs: number, slotMs: number, slots: number): Promise<ActivitySlot[]> {
  // fetched_ms in (now - slots·slotMs, now] maps to slot 0 … slots-1 (integer division floors).
  const r = await c.query<{ source: string; slot: string; files: string; bytes: string }>(
    `SELECT source, (($1::bigint - fetched_ms) / $2::bigint) AS slot, COUNT(*) AS files, SUM(size_bytes) AS bytes
     FROM files WHERE fetched_ms > $3::bigint AND fetched_ms <= $1::bigint
     GROUP BY source, slot ORDER BY source, slot`,
    [Math.floor(nowMs), Math.max(1, Math.floor(slotMs)), Math.floor(nowMs - slots * slotMs)],
  );
  return r.rows.map((x) => ({
    source: x.source,
    slot: Number(x.slot),
    files: Number(x.files),
    bytes: Number(x.bytes),
  }));
}

export async function stats(c: Q): Promise<LedgerStats> {
  const r = await c.query<{ files: number; runs: number; bytes: number }>(
    `SELECT (SELECT count(*) FROM files) AS files, (SELECT count(*) FROM plugin_runs) AS runs,
       pg_database_size(current_database()) AS bytes`,
  );
  const row = r.rows[0] as { files: number; runs: number; bytes: number };
  return { fileRows: row.files, pluginRunRows: row.runs, bytes: row.bytes };
}

export async function liveFetches(c: Q): Promise<Array<{ id: number; sizeBytes: number; mtimeMs: number }>> {
  const r = await c.query<{ id: number; sizeBytes: number; mtimeMs: number }>(
    `SELECT id, size_bytes AS "sizeBytes", mtime_ms AS "mtimeMs" FROM files WHERE ${LIVE_FETCH_SQL}`,
  );
  return r.rows;
}
