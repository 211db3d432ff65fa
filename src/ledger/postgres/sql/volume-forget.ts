/**
 * `poller forget` of file versions, in the file ledger's transaction (before their rows go): a
 * collecting volume loses them as members; a volume that left collecting keeps them as its
 * history, marked forgotten, so the same file coming back reopens it.
 */
import type { Q } from '../pool.js';

export async function forgetVolumeMembers(c: Q, fileIds: readonly number[]): Promise<void> {
  if (fileIds.length === 0) return;
  await c.query(
    `DELETE FROM volume_members WHERE file_id = ANY($1::bigint[])
       AND volume_id IN (SELECT id FROM volumes WHERE state = 'collecting')`,
    [fileIds],
  );
  await c.query('UPDATE volume_members SET forgotten = 1 WHERE file_id = ANY($1::bigint[])', [fileIds]);
}
