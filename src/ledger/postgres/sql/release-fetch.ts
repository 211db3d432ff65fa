/** Claimed versions back to `seen` without counting an attempt (shutdown, grew during download). */
import type { Q } from '../pool.js';

export async function releaseFetch(c: Q, ids: readonly number[], owner: string, nowMs: number): Promise<void> {
  if (ids.length === 0) return;
  await c.query(
    `UPDATE files SET state = 'seen', sightings = 1, ready_ms = NULL, claimed_by = NULL, lease_until_ms = NULL,
       updated_ms = $3
     WHERE id = ANY($1::bigint[]) AND claimed_by = $2 AND state = 'fetching'`,
    [ids, owner, nowMs],
  );
}
