/**
 * Recovery, in the caller's transaction: claims whose lease ran out or whose owner is gone
 * (`core/crash.ts`) are given back, and runs the dead poller had started become crashed attempts.
 */
import { CRASHED_RUN_MESSAGE, crashedRunsSql, staleClaims, UNCLAIMED_STATE } from '../../core/crash.js';
import type { FileState } from '../../records.js';
import type { Q } from '../pool.js';

export async function recoverStale(
  c: Q,
  nowMs: number,
  isOwnerGone: (owner: string) => boolean,
): Promise<{ fetches: number; processing: number }> {
  const claimed = await c.query<{
    id: number;
    state: FileState;
    claimed_by: string | null;
    lease_until_ms: number | null;
  }>(`SELECT id, state, claimed_by, lease_until_ms FROM files WHERE state IN ('fetching', 'processing')`);
  const stale = staleClaims(claimed.rows, nowMs, isOwnerGone);
  const fetches = await unclaim(c, 'fetching', stale.fetching, nowMs);
  const processing = await unclaim(c, 'processing', stale.processing, nowMs);
  await markCrashedRuns(c, nowMs);
  return { fetches, processing };
}

/** Give these claims back, each only if it is still the claim that was read. */
async function unclaim(
  c: Q,
  from: 'fetching' | 'processing',
  rows: readonly { id: number; claimed_by: string | null }[],
  nowMs: number,
): Promise<number> {
  if (rows.length === 0) return 0;
  const r = await c.query(
    `UPDATE files f SET state = $1, claimed_by = NULL, lease_until_ms = NULL, updated_ms = $2
     FROM unnest($3::bigint[], $4::text[]) AS u(id, owner)
     WHERE f.id = u.id AND f.state = $5 AND f.claimed_by IS NOT DISTINCT FROM u.owner`,
    [UNCLAIMED_STATE[from], nowMs, rows.map((p) => p.id), rows.map((p) => p.claimed_by), from],
  );
  return r.rowCount ?? 0;
}

/** Runs left 'running' of files given back: failed, due now, their attempt counted. */
export async function markCrashedRuns(c: Q, nowMs: number): Promise<void> {
  await c.query(crashedRunsSql('$1', '$2'), [CRASHED_RUN_MESSAGE, nowMs]);
}
