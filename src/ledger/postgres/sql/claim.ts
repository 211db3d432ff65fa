/**
 * Claims: `FOR UPDATE SKIP LOCKED` on the due rows (partial indexes), so concurrent claimers never
 * wait on each other and never take the same row. The due conditions are `core/guards.ts`'s.
 */
import { fetchDueSql, processDueSql } from '../../core/guards.js';
import type { FileRecord } from '../../records.js';
import { type FileRow, toRecord } from '../../rows.js';
import type { Q } from '../pool.js';
import { inOrder } from './read-files.js';

export type ClaimTo = 'fetching' | 'processing';

/**
 * Where the bytes are (`landed_on`: the instance whose landing root holds a version's partial or
 * landed file with a landing root per host; NULL, the shared root). Processing reads the landed
 * bytes, so it is claimed only where they are. A fetch resumes its partial, so it goes back to the
 * instance holding one while that instance lives; a fetch claim records the claimer as the holder.
 */
const landedHereSql = (self: string): string => `landed_on IS NOT DISTINCT FROM ${self}::text`;
const fetchableHereSql = (self: string): string =>
  `(landed_on IS NULL OR ${landedHereSql(self)} OR NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = files.landed_on))`;

function claimSql(to: ClaimTo, self: string): { where: string; set: string } {
  return to === 'fetching'
    ? { where: fetchableHereSql(self), set: `, landed_on = ${self}::text` }
    : { where: landedHereSql(self), set: '' };
}

/**
 * Claim the given ids that are due for `to`, in the order asked; rows another claimer holds are
 * skipped, and so are rows whose bytes another live instance's landing holds.
 */
export async function claimIds(
  c: Q,
  ids: readonly number[],
  to: ClaimTo,
  owner: string,
  leaseUntilMs: number,
  nowMs: number,
  landedOn: string | null,
): Promise<FileRecord[]> {
  if (ids.length === 0) return [];
  const due = to === 'fetching' ? fetchDueSql('$4') : processDueSql('$4');
  const here = claimSql(to, '$6');
  const r = await c.query<FileRow>(
    `WITH c AS (SELECT id FROM files WHERE id = ANY($1::bigint[]) AND ${due} AND ${here.where} FOR UPDATE SKIP LOCKED)
     UPDATE files f SET state = $5, claimed_by = $2, lease_until_ms = $3, updated_ms = $4${here.set}
     FROM c WHERE f.id = c.id RETURNING f.*`,
    [ids, owner, leaseUntilMs, nowMs, to, landedOn],
  );
  return inOrder(ids, r.rows);
}

/**
 * Claim up to `limit` due rows, newest first. `which` picks them: `process` (of a source, or of
 * every source with null), `fetch` (ready and seen, or a fetch retry now due, of one source).
 */
export async function claimNewest(
  c: Q,
  which: 'process' | 'fetch',
  source: string | null,
  owner: string,
  leaseUntilMs: number,
  nowMs: number,
  limit: number,
  landedOn: string | null,
): Promise<FileRecord[]> {
  const due =
    which === 'process'
      ? `($1::text IS NULL OR source = $1) AND ${processDueSql('$4')}`
      : `source = $1 AND ((state = 'seen' AND ready_ms IS NOT NULL) OR (state = 'failed' AND stage = 'fetch' AND next_retry_ms <= $4))`;
  const to: ClaimTo = which === 'process' ? 'processing' : 'fetching';
  const here = claimSql(to, '$7');
  const r = await c.query<FileRow>(
    `WITH c AS (SELECT id FROM files WHERE ${due} AND ${here.where} ORDER BY mtime_ms DESC LIMIT $5 FOR UPDATE SKIP LOCKED)
     UPDATE files f SET state = $6, claimed_by = $2, lease_until_ms = $3, updated_ms = $4${here.set}
     FROM c WHERE f.id = c.id RETURNING f.*`,
    [source, owner, leaseUntilMs, nowMs, limit, to, landedOn],
  );
  return r.rows.sort((a, b) => b.mtime_ms - a.mtime_ms || a.id - b.id).map(toRecord);
}

/** Extends this owner's claims; returns the ids it no longer holds. */
export async function renewLeases(
  c: Q,
  ids: readonly number[],
  owner: string,
  leaseUntilMs: number,
): Promise<number[]> {
  if (ids.length === 0) return [];
  const r = await c.query<{ id: number }>(
    `UPDATE files SET lease_until_ms = $3
     WHERE id = ANY($1::bigint[]) AND claimed_by = $2 AND state IN ('fetching', 'processing')
     RETURNING id`,
    [ids, owner, leaseUntilMs],
  );
  return lostOf(ids, r.rows);
}

/** Ids asked for that a write did not touch: their claim was lost. */
export function lostOf(ids: readonly number[], rows: readonly { id: number }[]): number[] {
  const done = new Set(rows.map((r) => Number(r.id)));
  return ids.filter((id) => !done.has(id));
}

/**
 * After a claim whose commit went unanswered (the primary failed meanwhile): the rows it claimed,
 * if it committed. A claim's rows carry its owner, lease end and time, so they are found again
 * on the new primary; without this they would stay claimed, by nobody, until the next restart.
 */
export async function claimedBy(
  c: Q,
  to: ClaimTo,
  owner: string,
  leaseUntilMs: number,
  nowMs: number,
  among: { readonly ids: readonly number[] } | { readonly source: string | null },
): Promise<FileRecord[]> {
  const which = 'ids' in among ? 'id = ANY($5::bigint[])' : '($5::text IS NULL OR source = $5)';
  const r = await c.query<FileRow>(
    `SELECT * FROM files WHERE state = $1 AND claimed_by = $2 AND lease_until_ms = $3 AND updated_ms = $4 AND ${which}`,
    [to, owner, leaseUntilMs, nowMs, 'ids' in among ? among.ids : among.source],
  );
  if ('ids' in among) return inOrder(among.ids, r.rows);
  return r.rows.sort((a, b) => b.mtime_ms - a.mtime_ms || a.id - b.id).map(toRecord);
}
