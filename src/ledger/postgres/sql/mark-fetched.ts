/**
 * Landed files: fetched (or processed at once when no plugin matches), only where this owner holds
 * the claim; `landedOn` is the instance whose landing holds them (NULL: the shared root).
 */
import type { FetchedItem } from '../../records.js';
import type { FileRow } from '../../rows.js';
import type { Q } from '../pool.js';

/**
 * `rows`: whole rows back (the outbox builds events from them); otherwise only the ids, which is
 * all a commit without sinks needs (a landed batch's one round trip stays small).
 */
export async function markFetched(
  c: Q,
  items: readonly FetchedItem[],
  owner: string,
  nowMs: number,
  landedOn: string | null,
  rows = true,
): Promise<Array<Pick<FileRow, 'id'>>> {
  const r = await c.query<Pick<FileRow, 'id'>>(
    `UPDATE files f SET state = CASE WHEN u.done THEN 'processed' ELSE 'fetched' END, stage = NULL,
       local_path = u.local_path, fetched_ms = $2, done_ms = CASE WHEN u.done THEN $2 ELSE f.done_ms END,
       claimed_by = NULL, lease_until_ms = NULL, error_code = NULL, last_error = NULL, next_retry_ms = NULL,
       fetch_attempts = f.fetch_attempts + 1, updated_ms = $2, landed_on = $6
     FROM unnest($3::bigint[], $4::text[], $5::boolean[]) AS u(id, local_path, done)
     WHERE f.id = u.id AND f.claimed_by = $1 AND f.state = 'fetching'
     RETURNING ${rows ? 'f.*' : 'f.id'}`,
    [owner, nowMs, items.map((i) => i.id), items.map((i) => i.localPath), items.map((i) => !!i.done), landedOn],
  );
  return r.rows;
}

/** Of these rows, those whose path landed an earlier version (their event is an update). */
export async function withPriorVersion(c: Q, ids: readonly number[]): Promise<Set<number>> {
  const prior = new Set<number>();
  if (ids.length === 0) return prior;
  const p = await c.query<{ id: number }>(
    `SELECT f.id FROM files f WHERE f.id = ANY($1::bigint[]) AND EXISTS (
       SELECT 1 FROM files p WHERE p.source = f.source AND p.path = f.path AND p.id < f.id AND p.fetched_ms IS NOT NULL)`,
    [ids],
  );
  for (const row of p.rows) prior.add(row.id);
  return prior;
}
