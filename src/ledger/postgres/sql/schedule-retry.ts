/** `poller retry`, in the caller's transaction: the plan of `core/retry.ts` written. */
import { planRetry, retryStates } from '../../core/retry.js';
import type { RetryFilter } from '../../records.js';
import type { FileRow } from '../../rows.js';
import type { Q } from '../pool.js';
import { runsOf } from './plugin-runs.js';

export async function scheduleRetry(c: Q, f: RetryFilter, nowMs: number): Promise<number[]> {
  // Quarantined fetches become due again: their directories must be diffed entry by entry.
  await c.query('DELETE FROM listing_digests');
  const rows = (
    await c.query<FileRow>(
      `SELECT * FROM files WHERE state = ANY($1::text[]) AND ($2::text IS NULL OR source = $2)
         AND ($3::text IS NULL OR path = $3) ORDER BY id FOR UPDATE`,
      [retryStates(f.includeQuarantined), f.source ?? null, f.path ?? null],
    )
  ).rows;
  const runs = await runsOf(
    c,
    rows.filter((r) => r.stage === 'process').map((r) => r.id),
  );
  const plan = planRetry(rows, (id) => runs.get(id) ?? [], f);
  if (plan.runs.length > 0)
    await c.query(
      `UPDATE plugin_runs p SET state = 'failed', next_retry_ms = $1,
         attempts = CASE WHEN p.state = 'quarantined' THEN 0 ELSE p.attempts END
       FROM unnest($2::bigint[], $3::text[]) AS u(id, plugin) WHERE p.file_id = u.id AND p.plugin = u.plugin`,
      [nowMs, plan.runs.map((r) => r.fileId), plan.runs.map((r) => r.plugin)],
    );
  if (plan.fileIds.length > 0)
    await c.query(
      `UPDATE files SET state = 'failed', next_retry_ms = $1,
         fetch_attempts = CASE WHEN state = 'quarantined' AND stage = 'fetch' THEN 0 ELSE fetch_attempts END,
         updated_ms = $1
       WHERE id = ANY($2::bigint[])`,
      [nowMs, plan.fileIds],
    );
  return plan.fileIds;
}
