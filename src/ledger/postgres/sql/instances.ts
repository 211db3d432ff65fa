/**
 * The instance registry of a shared ledger: heartbeats, the sweep of instances that stopped
 * beating (their claims given back, their lister leases ended, their started runs crashed
 * attempts, what they landed in a landing root of their own due for fetching again), the list
 * of instances, and a clean leave.
 */
import type { InstanceRecord, SweepResult } from '../../records.js';
import { SWEEP_LOCK_KEY } from '../migrations.js';
import type { Q } from '../pool.js';
import { markCrashedRuns } from './recover-stale.js';
import { refetchOrphaned } from './refetch-orphaned.js';
import { giveBackVolumes } from './volume-recover.js';

export async function heartbeat(
  c: Q,
  i: { id: string; owner: string; host: string; pid: number },
  nowMs: number,
  leaseMs?: number,
): Promise<void> {
  // A live lister keeps its sources between its cycles (a schedule longer than the lease).
  if (leaseMs !== undefined)
    await c.query('UPDATE listers SET lease_until_ms = $2 WHERE owner = $1 AND lease_until_ms >= $3', [
      i.owner,
      nowMs + leaseMs,
      nowMs,
    ]);
  const r = await c.query<{ prev: string | null }>(
    `WITH prev AS (SELECT owner FROM instances WHERE id = $1)
     , up AS (
       INSERT INTO instances (id, owner, host, pid, started_ms, heartbeat_ms) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (id) DO UPDATE SET heartbeat_ms = $5, owner = excluded.owner, host = excluded.host,
         pid = excluded.pid,
         started_ms = CASE WHEN instances.owner = excluded.owner THEN instances.started_ms ELSE $5 END
       RETURNING 1)
     SELECT (SELECT owner FROM prev) AS prev FROM up`,
    [i.id, i.owner, i.host, i.pid, nowMs],
  );
  const prev = r.rows[0]?.prev ?? null;
  // The same instance id under a new owner: the earlier process of that id is gone (an id runs
  // once at a time); its claims are given back now rather than at their lease's end.
  if (prev !== null && prev !== i.owner) {
    await giveBack(c, [prev], nowMs);
    await giveBackVolumes(c, [prev], nowMs);
  }
}

/** Claims of these owners back: fetches to `seen`, processing to `fetched`. */
async function giveBack(
  c: Q,
  owners: readonly string[],
  nowMs: number,
): Promise<{ fetches: number; processing: number }> {
  const r = await c.query<{ state: string }>(
    `UPDATE files SET state = CASE WHEN state = 'fetching' THEN 'seen' ELSE 'fetched' END, claimed_by = NULL,
       lease_until_ms = NULL, updated_ms = $2
     WHERE state IN ('fetching', 'processing') AND claimed_by = ANY($1::text[])
     RETURNING state`,
    [owners, nowMs],
  );
  const fetches = r.rows.filter((x) => x.state === 'seen').length;
  return { fetches, processing: r.rows.length - fetches };
}

/** In the caller's transaction; one sweeper at a time, the others skip this round instead of queueing. */
export async function sweepDead(c: Q, nowMs: number, leaseMs: number): Promise<SweepResult> {
  const lock = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [String(SWEEP_LOCK_KEY)]);
  if (!lock.rows[0]?.ok) return { swept: false, dead: [], fetches: 0, processing: 0 };
  const dead = (
    await c.query<{ id: string; owner: string }>('DELETE FROM instances WHERE heartbeat_ms < $1 RETURNING id, owner', [
      nowMs - leaseMs,
    ])
  ).rows;
  let given = { fetches: 0, processing: 0 };
  let volumes = 0;
  if (dead.length > 0) {
    const owners = dead.map((d) => d.owner);
    given = await giveBack(c, owners, nowMs);
    // Their volume claims too: the versions they were running run again on another host.
    volumes = await giveBackVolumes(c, owners, nowMs);
    await c.query('UPDATE listers SET lease_until_ms = 0 WHERE owner = ANY($1::text[])', [owners]);
    // Runs the dead instance had started count as attempts (as after a local crash).
    await markCrashedRuns(c, nowMs);
  }
  // Every round, not only when one died now: an instance that left cleanly, or a retried version
  // of one gone earlier, has landed work no live landing holds.
  const refetch = await refetchOrphaned(c, nowMs);
  return {
    swept: true,
    dead: dead.map((d) => d.id).sort(),
    ...given,
    ...(dead.length > 0 && { volumes }),
    ...(refetch > 0 && { refetch }),
  };
}

export async function instances(c: Q): Promise<InstanceRecord[]> {
  const r = await c.query<{
    id: string;
    owner: string;
    host: string;
    pid: number;
    started_ms: number;
    heartbeat_ms: number;
    fetching: number;
    processing: number;
  }>(
    `SELECT i.*, count(f.id) FILTER (WHERE f.state = 'fetching') AS fetching,
       count(f.id) FILTER (WHERE f.state = 'processing') AS processing
     FROM instances i LEFT JOIN files f ON f.claimed_by = i.owner AND f.state IN ('fetching', 'processing')
     GROUP BY i.id ORDER BY i.id`,
  );
  return r.rows.map((i) => ({
    id: i.id,
    owner: i.owner,
    host: i.host,
    pid: i.pid,
    startedMs: i.started_ms,
    heartbeatMs: i.heartbeat_ms,
    fetching: i.fetching,
    processing: i.processing,
  }));
}

export async function leave(c: Q, id: string): Promise<void> {
  // Its lister leases end now (kept, expired: the next holder gets the next epoch).
  await c.query(
    `WITH gone AS (DELETE FROM instances WHERE id = $1 RETURNING owner)
     UPDATE listers SET lease_until_ms = 0 WHERE owner IN (SELECT owner FROM gone)`,
    [id],
  );
}
