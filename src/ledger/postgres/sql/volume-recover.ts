/**
 * Volume claims given back, in the caller's transaction: at start (claims of a stopped process on
 * this host, or past their lease, `core/crash.ts`) and by the sweep of dead instances. A run the
 * dead owner had started becomes a crashed attempt (failed, due now), so it runs again elsewhere.
 */
import { CRASHED_RUN_CODE, CRASHED_VOLUME_RUN_MESSAGE, isStaleClaim } from '../../core/crash.js';
import type { Q } from '../pool.js';

export async function recoverStaleVolumes(
  c: Q,
  nowMs: number,
  isOwnerGone: (owner: string) => boolean,
): Promise<number> {
  const claimed = await c.query<{ id: number; claimed_by: string | null; lease_until_ms: number | null }>(
    'SELECT id, claimed_by, lease_until_ms FROM volumes WHERE claimed_by IS NOT NULL',
  );
  const stale = claimed.rows.filter((r) => isStaleClaim(r, nowMs, isOwnerGone));
  if (stale.length === 0) return 0;
  // Each only if it is still the claim that was read.
  const r = await c.query<{ id: number }>(
    `UPDATE volumes v SET claimed_by = NULL, lease_until_ms = NULL, updated_ms = $1
     FROM unnest($2::bigint[], $3::text[]) AS u(id, owner)
     WHERE v.id = u.id AND v.claimed_by = u.owner RETURNING v.id`,
    [nowMs, stale.map((s) => s.id), stale.map((s) => s.claimed_by)],
  );
  await markCrashedVolumeRuns(
    c,
    r.rows.map((x) => x.id),
    nowMs,
  );
  return r.rows.length;
}

/** The volume claims of these (dead) owners back; returns how many. */
export async function giveBackVolumes(c: Q, owners: readonly string[], nowMs: number): Promise<number> {
  const r = await c.query<{ id: number }>(
    `UPDATE volumes SET claimed_by = NULL, lease_until_ms = NULL, updated_ms = $2
     WHERE claimed_by = ANY($1::text[]) RETURNING id`,
    [owners, nowMs],
  );
  await markCrashedVolumeRuns(
    c,
    r.rows.map((x) => x.id),
    nowMs,
  );
  return r.rows.length;
}

/** Not recorded as a success: it runs again, its attempt already counted (no crash loop). */
async function markCrashedVolumeRuns(c: Q, ids: readonly number[], nowMs: number): Promise<void> {
  if (ids.length === 0) return;
  await c.query(
    `UPDATE volume_runs SET state = 'failed', error_code = '${CRASHED_RUN_CODE}', last_error = $2, next_retry_ms = $3
     WHERE volume_id = ANY($1::bigint[]) AND state = 'running'`,
    [ids, CRASHED_VOLUME_RUN_MESSAGE, nowMs],
  );
}
