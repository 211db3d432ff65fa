/** Fetches that failed: failed with a retry time, or quarantined; only where this owner holds the claim (`rows`: see markFetched). */
import { clip } from '../../core/verdict.js';
import type { FetchFailedItem } from '../../records.js';
import type { FileRow } from '../../rows.js';
import type { Q } from '../pool.js';

export async function markFetchFailed(
  c: Q,
  items: readonly FetchFailedItem[],
  owner: string,
  nowMs: number,
  rows = true,
): Promise<Array<Pick<FileRow, 'id'>>> {
  const f = items.map((i) => i.failure);
  const r = await c.query<Pick<FileRow, 'id'>>(
    `UPDATE files f SET state = u.state, stage = 'fetch', error_code = u.code, last_error = u.error,
       next_retry_ms = u.retry, fetch_attempts = f.fetch_attempts + u.counted, claimed_by = NULL,
       lease_until_ms = NULL, updated_ms = $2, done_ms = CASE WHEN u.state = 'quarantined' THEN $2 ELSE f.done_ms END
     FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::int[])
       AS u(id, state, code, error, retry, counted)
     WHERE f.id = u.id AND f.claimed_by = $1 AND f.state = 'fetching'
     RETURNING ${rows ? 'f.*' : 'f.id'}`,
    [
      owner,
      nowMs,
      items.map((i) => i.id),
      f.map((x) => (x.quarantine ? 'quarantined' : 'failed')),
      f.map((x) => x.errorCode),
      f.map((x) => clip(x.message)),
      f.map((x) => (x.quarantine ? null : (x.nextRetryMs ?? nowMs))),
      f.map((x) => (x.notCounted ? 0 : 1)),
    ],
  );
  return r.rows;
}
