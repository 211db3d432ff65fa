/** `poller retry` of volumes, in the caller's transaction: the runs the filter takes (`core/retry.ts`) made due now. */
import { retryStates, runsToRetry } from '../../core/retry.js';
import type { Q } from '../pool.js';
import { volumeRunsOf } from './volume-runs.js';

export async function retryVolumes(
  c: Q,
  f: { source?: string; plugin?: string; key?: string; includeQuarantined: boolean },
  nowMs: number,
): Promise<number[]> {
  const candidates = await c.query<{ id: number }>(
    `SELECT id FROM volumes WHERE state = ANY($1::text[]) AND claimed_by IS NULL
       AND ($2::text IS NULL OR source = $2) AND ($3::text IS NULL OR key = $3) ORDER BY id FOR UPDATE`,
    [retryStates(f.includeQuarantined), f.source ?? null, f.key ?? null],
  );
  const runs = await volumeRunsOf(
    c,
    candidates.rows.map((r) => r.id),
  );
  const due = candidates.rows.flatMap((r) => runsToRetry(runs.get(r.id) ?? [], f));
  if (due.length === 0) return [];
  await c.query(
    `UPDATE volume_runs r SET state = 'failed', next_retry_ms = $1,
       attempts = CASE WHEN r.state = 'quarantined' THEN 0 ELSE r.attempts END
     FROM unnest($2::bigint[], $3::text[]) AS u(id, plugin) WHERE r.volume_id = u.id AND r.plugin = u.plugin`,
    [nowMs, due.map((r) => r.volume_id), due.map((r) => r.plugin)],
  );
  const ids = [...new Set(due.map((r) => r.volume_id))];
  await c.query(
    `UPDATE volumes SET state = 'failed', next_retry_ms = $2, done_ms = NULL, updated_ms = $2
     WHERE id = ANY($1::bigint[])`,
    [ids, nowMs],
  );
  return ids;
}
