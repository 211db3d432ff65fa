/** `poller forget`, in the caller's transaction: versions deleted (never in-flight ones) so a listing takes them again. */
import { CLAIMED_SQL } from '../../core/guards.js';
import type { ForgetFilter } from '../../records.js';
import type { Q } from '../pool.js';
import { forgetVolumeMembers } from './volume-forget.js';

export async function forget(c: Q, f: ForgetFilter): Promise<number> {
  await c.query('DELETE FROM listing_digests WHERE source = $1', [f.source]);
  const found = await c.query<{ id: number }>(
    `SELECT id FROM files WHERE source = $1 AND NOT ${CLAIMED_SQL}
       AND ($2::text IS NULL OR path = $2) AND ($3::text IS NULL OR state = $3) FOR UPDATE`,
    [f.source, f.path ?? null, f.state ?? null],
  );
  const ids = found.rows.map((r) => r.id);
  if (ids.length === 0) return 0;
  // Their volume memberships go in the same transaction: a forgotten file reruns its volume.
  await forgetVolumeMembers(c, ids);
  const r = await c.query('DELETE FROM files WHERE id = ANY($1::bigint[])', [ids]);
  return r.rowCount ?? 0;
}
