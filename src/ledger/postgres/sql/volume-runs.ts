/** Volume plugin runs: read per volume, and the crash-safe start (the attempt is counted before the run). */
import type { VolumeRunStart } from '../../volume-ledger.js';
import type { VolumeRunRow } from '../../volume-rows.js';
import type { Q } from '../pool.js';

/** Runs of each volume, by plugin (volumes without runs map to an empty list). */
export async function volumeRunsOf(c: Q, ids: readonly number[]): Promise<Map<number, VolumeRunRow[]>> {
  const out = new Map<number, VolumeRunRow[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const r = await c.query<VolumeRunRow>(
    'SELECT * FROM volume_runs WHERE volume_id = ANY($1::bigint[]) ORDER BY volume_id, plugin',
    [ids],
  );
  for (const row of r.rows) out.get(row.volume_id)?.push(row);
  return out;
}

/** Each run's attempt number, in order. */
export async function markVolumeRunning(c: Q, runs: readonly VolumeRunStart[], nowMs: number): Promise<number[]> {
  if (runs.length === 0) return [];
  const r = await c.query<{ volume_id: number; plugin: string; attempts: number }>(
    `INSERT INTO volume_runs (volume_id, plugin, state, attempts, updated_ms)
     SELECT id, plugin, 'running', 1, $3 FROM unnest($1::bigint[], $2::text[]) AS u(id, plugin)
     ON CONFLICT (volume_id, plugin) DO UPDATE SET state = 'running', attempts = volume_runs.attempts + 1,
       updated_ms = $3
     RETURNING volume_id, plugin, attempts`,
    [runs.map((x) => x.volumeId), runs.map((x) => x.plugin), nowMs],
  );
  const got = new Map(r.rows.map((row) => [`${row.volume_id}\0${row.plugin}`, row.attempts]));
  return runs.map((x) => got.get(`${x.volumeId}\0${x.plugin}`) ?? 1);
}
