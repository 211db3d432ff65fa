/**
 * Plugin runs: read per file, the crash-safe start (the attempt is counted before the run), and a
 * success recorded before the file's next plugin runs.
 */
import type { PluginRunStart, PluginRunSuccess } from '../../records.js';
import type { RunRow } from '../../rows.js';
import { chunks, type Q } from '../pool.js';

/** Runs of each file, by file id then plugin (files without runs map to an empty list). */
export async function runsOf(c: Q, fileIds: readonly number[]): Promise<Map<number, RunRow[]>> {
  const out = new Map<number, RunRow[]>(fileIds.map((id) => [id, []]));
  for (const part of chunks(fileIds)) {
    const r = await c.query<RunRow>(
      'SELECT * FROM plugin_runs WHERE file_id = ANY($1::bigint[]) ORDER BY file_id, plugin',
      [part],
    );
    for (const row of r.rows) out.get(row.file_id)?.push(row);
  }
  return out;
}

/** Each run's attempt number, in order. */
export async function markPluginRunning(c: Q, runs: readonly PluginRunStart[], nowMs: number): Promise<number[]> {
  if (runs.length === 0) return [];
  const r = await c.query<{ file_id: number; plugin: string; attempts: number }>(
    `INSERT INTO plugin_runs (file_id, plugin, state, attempts, updated_ms)
     SELECT id, plugin, 'running', 1, $3 FROM unnest($1::bigint[], $2::text[]) AS u(id, plugin)
     ON CONFLICT (file_id, plugin) DO UPDATE SET state = 'running', attempts = plugin_runs.attempts + 1, updated_ms = $3
     RETURNING file_id, plugin, attempts`,
    [runs.map((x) => x.fileId), runs.map((x) => x.plugin), nowMs],
  );
  const got = new Map(r.rows.map((row) => [`${row.file_id}\0${row.plugin}`, row.attempts]));
  return runs.map((x) => got.get(`${x.fileId}\0${x.plugin}`) ?? 1);
}

/** Successes of runs whose file this owner still holds; a run of a file taken over is left alone. */
export async function markPluginSucceeded(
  c: Q,
  runs: readonly PluginRunSuccess[],
  owner: string,
  nowMs: number,
): Promise<void> {
  if (runs.length === 0) return;
  await c.query(
    `UPDATE plugin_runs p SET state = 'succeeded', error_code = NULL, last_error = NULL, duration_ms = u.duration,
       next_retry_ms = NULL, outputs = u.outputs::jsonb, updated_ms = $1
     FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[]) AS u(id, plugin, duration, outputs), files f
     WHERE p.file_id = u.id AND p.plugin = u.plugin AND p.state = 'running'
       AND f.id = u.id AND f.claimed_by = $6 AND f.state = 'processing'`,
    [
      nowMs,
      runs.map((r) => r.fileId),
      runs.map((r) => r.plugin),
      runs.map((r) => Math.round(r.durationMs)),
      runs.map((r) => JSON.stringify(r.outputs)),
      owner,
    ],
  );
}
