/**
 * The fencing check of a listing, inside its transaction: the lister row is share-locked, so a
 * takeover waits for this listing to commit, and a listing under an older epoch writes nothing.
 */
import { TransientError } from '../../../errors.js';
import type { Q } from '../pool.js';

export async function checkLister(c: Q, source: string, lister: { owner: string; epoch: number }): Promise<void> {
  const r = await c.query<{ owner: string; epoch: number }>(
    'SELECT owner, epoch FROM listers WHERE source = $1 FOR SHARE',
    [source],
  );
  const row = r.rows[0];
  if (row?.owner === lister.owner && row.epoch === lister.epoch) return;
  throw new TransientError(
    'POLLER_LEDGER_LISTER_LOST',
    `${source}: another instance lists this source now (lease epoch ${row?.epoch ?? 'none'}, this listing held ${lister.epoch}); nothing recorded`,
  );
}
