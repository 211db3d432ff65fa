/**
 * Volume claims, as file claims: `FOR UPDATE SKIP LOCKED` on the due versions (a partial index),
 * so concurrent hosts never wait on each other and never take the same version; the claim is a
 * lease, given back by the sweep when its instance dies (`volume-recover.ts`).
 */
import type { VolumeRow } from '../../volume-rows.js';
import type { Q } from '../pool.js';

/** Due: complete or partial, or failed with its retry due. */
const DUE = `claimed_by IS NULL AND (state IN ('complete', 'partial') OR (state = 'failed' AND next_retry_ms <= $3))`;

/** Take up to `limit` due versions of a source, newest last member first. */
export async function claimVolumes(
  c: Q,
  source: string,
  owner: string,
  leaseUntilMs: number,
  nowMs: number,
  limit: number,
): Promise<VolumeRow[]> {
  const r = await c.query<VolumeRow>(
    `WITH c AS (SELECT id FROM volumes WHERE source = $1 AND ${DUE}
                ORDER BY last_member_ms DESC LIMIT $5 FOR UPDATE SKIP LOCKED)
     UPDATE volumes v SET claimed_by = $2, lease_until_ms = $4, updated_ms = $3
     FROM c WHERE v.id = c.id RETURNING v.*`,
    [source, owner, nowMs, leaseUntilMs, limit],
  );
  return r.rows.sort((a, b) => b.last_member_ms - a.last_member_ms || a.id - b.id);
}

/**
 * The versions a claim took, when its commit went unanswered in a failover: a claim's rows carry
 * its owner, lease end and time, so they are found again on the new primary (else they would
 * stay claimed, by a live owner, until its restart).
 */
export async function volumesClaimedBy(
  c: Q,
  source: string,
  owner: string,
  leaseUntilMs: number,
  nowMs: number,
): Promise<VolumeRow[]> {
  const r = await c.query<VolumeRow>(
    'SELECT * FROM volumes WHERE source = $1 AND claimed_by = $2 AND lease_until_ms = $3 AND updated_ms = $4',
    [source, owner, leaseUntilMs, nowMs],
  );
  return r.rows.sort((a, b) => b.last_member_ms - a.last_member_ms || a.id - b.id);
}
