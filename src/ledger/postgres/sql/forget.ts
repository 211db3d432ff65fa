/** `poller forget`, in the caller's transaction: versions deleted (never in-flight ones) so a listing takes them again. */
import { CLAIMED_SQL } from '../../core/guards.js';
import type { ForgetFilter } from '../../records.js';
import type { Q } from '../pool.js';

export async function forget(c: Q, f: ForgetFilter): Promise<number> {
  await c.query('DELETE FROM listing_digests WHERE source = $1', [f.source]);
  const r = await c.query(
    `DELETE FROM files WHERE source = $1 AND NOT ${CLAIMED_SQL}
       AND ($2::text IS NULL OR path = $2) AND ($3::text IS NULL OR state = $3)`,
    [f.source, f.path ?? null, f.state ?? null],
  );
  return r.rowCount ?? 0;
}
