/**
 * A landing root per host: versions landed on an instance that is gone (swept past its lease, or
 * left) and not yet processed are due for fetching again, in the sweep's transaction. Their bytes
 * are on a disk no live instance reads, so another instance lands them in its own root; the plugin
 * runs are kept, so a plugin that succeeded there is not run again and one that had not finished
 * runs on the new host (a run the dead instance left 'running' was already made a crashed attempt).
 * Quarantined versions stay as they are until `poller retry` makes them due (then they move too).
 */
import type { Q } from '../pool.js';

export async function refetchOrphaned(c: Q, nowMs: number): Promise<number> {
  const r = await c.query<{ source: string }>(
    `UPDATE files f SET state = 'seen', stage = NULL, ready_ms = $1, landed_on = NULL, local_path = NULL,
       next_retry_ms = NULL, claimed_by = NULL, lease_until_ms = NULL, updated_ms = $1
     WHERE f.landed_on IS NOT NULL AND (f.state = 'fetched' OR (f.state = 'failed' AND f.stage = 'process'))
       AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = f.landed_on)
     RETURNING f.source`,
    [nowMs],
  );
  if (r.rows.length === 0) return 0;
  // A directory answered by its stored digest is not diffed: the lister must see these rows again.
  await c.query('DELETE FROM listing_digests WHERE source = ANY($1::text[])', [
    [...new Set(r.rows.map((x) => x.source))],
  ]);
  return r.rows.length;
}
