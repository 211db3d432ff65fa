/** Lister leases of a shared ledger: one lister per source, fenced by an epoch. */
import type { Q } from '../pool.js';

/** The lease's epoch when this owner holds it now (renewed, or taken from an expired holder); null when another does. */
export async function acquireLister(
  c: Q,
  source: string,
  owner: string,
  nowMs: number,
  leaseMs: number,
): Promise<number | null> {
  // Renewed by its holder; taken, with the next epoch, from a holder whose lease has run out.
  const r = await c.query<{ epoch: number }>(
    `INSERT INTO listers (source, owner, epoch, lease_until_ms) VALUES ($1, $2, 1, $3)
     ON CONFLICT (source) DO UPDATE SET owner = $2, lease_until_ms = $3,
       epoch = CASE WHEN listers.owner = $2 THEN listers.epoch ELSE listers.epoch + 1 END
     WHERE listers.owner = $2 OR listers.lease_until_ms < $4
     RETURNING epoch`,
    [source, owner, nowMs + leaseMs, nowMs],
  );
  return r.rows[0]?.epoch ?? null;
}

export async function listers(
  c: Q,
): Promise<Array<{ source: string; owner: string; epoch: number; leaseUntilMs: number }>> {
  const r = await c.query<{ source: string; owner: string; epoch: number; lease_until_ms: number }>(
    'SELECT source, owner, epoch, lease_until_ms FROM listers ORDER BY source',
  );
  return r.rows.map((x) => ({ source: x.source, owner: x.owner, epoch: x.epoch, leaseUntilMs: x.lease_until_ms }));
}
