/** Versions whose landed bytes are a newer version's: superseded, never processed. */
import { SUPERSEDED_MESSAGE } from '../../rows.js';
import type { Q } from '../pool.js';
import { lostOf } from './claim.js';

export async function markSuperseded(c: Q, ids: readonly number[], owner: string, nowMs: number): Promise<number[]> {
  if (ids.length === 0) return [];
  const r = await c.query<{ id: number }>(
    `UPDATE files SET state = 'superseded', stage = NULL, claimed_by = NULL, lease_until_ms = NULL, done_ms = $3,
       error_code = 'POLLER_LANDING_SUPERSEDED', last_error = $4, next_retry_ms = NULL, updated_ms = $3
     WHERE id = ANY($1::bigint[]) AND claimed_by = $2 AND state = 'processing' RETURNING id`,
    [ids, owner, nowMs, SUPERSEDED_MESSAGE],
  );
  return lostOf(ids, r.rows);
}
