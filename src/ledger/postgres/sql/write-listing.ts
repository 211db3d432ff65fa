/**
 * A listing's writes, each one statement over `unnest` arrays per chunk: new versions, regrown
 * and sighted rows, digests kept and dropped, and readiness (in the ledger, so that instances
 * that do not list this source claim its ready files too).
 */
import { CHUNK, chunks, type Q } from '../pool.js';

/** The version columns of listed entries, one array per column. */
export interface VersionColumns {
  readonly path: string[];
  readonly size: number[];
  readonly mtime: number[];
  readonly precision: string[];
  readonly etag: string[];
}

export interface InsertColumns extends VersionColumns {
  readonly state: string[];
  readonly code: (string | null)[];
  readonly error: (string | null)[];
}

/** Inserted ids by index; an insert that met an existing identical row gives none. */
export async function insertVersions(
  c: Q,
  source: string,
  now: number,
  ins: InsertColumns,
): Promise<Map<number, number>> {
  const ids = new Map<number, number>();
  for (let from = 0; from < ins.path.length; from += CHUNK) {
    const to = Math.min(from + CHUNK, ins.path.length);
    const r = await c.query<{ id: number; ord: number }>(
      `WITH u AS (
         SELECT * FROM unnest($3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
           WITH ORDINALITY AS u(path, size, mtime, prec, state, code, error, etag, ord))
       , ins AS (
         INSERT INTO files (source, path, size_bytes, mtime_ms, mtime_precision, etag, state, sightings,
           first_seen_ms, last_seen_ms, error_code, last_error, updated_ms)
         SELECT $1, path, size, mtime, prec, etag, state, 1, $2, $2, code, error, $2 FROM u ORDER BY ord
         ON CONFLICT (source, path, size_bytes, mtime_ms, etag) DO NOTHING
         RETURNING id, path, size_bytes, mtime_ms, etag)
       SELECT ins.id, u.ord FROM ins JOIN u
         ON u.path = ins.path AND u.size = ins.size_bytes AND u.mtime = ins.mtime_ms AND u.etag = ins.etag`,
      [
        source,
        now,
        ins.path.slice(from, to),
        ins.size.slice(from, to),
        ins.mtime.slice(from, to),
        ins.precision.slice(from, to),
        ins.state.slice(from, to),
        ins.code.slice(from, to),
        ins.error.slice(from, to),
        ins.etag.slice(from, to),
      ],
    );
    for (const row of r.rows) ids.set(from + row.ord - 1, row.id);
  }
  return ids;
}

/** Settling rows that moved: the new version, sightings start again. */
export async function regrowVersions(c: Q, now: number, ids: readonly number[], v: VersionColumns): Promise<void> {
  for (let from = 0; from < ids.length; from += CHUNK) {
    const to = from + CHUNK;
    await c.query(
      `UPDATE files f SET size_bytes = u.size, mtime_ms = u.mtime, mtime_precision = u.prec, etag = u.etag,
         sightings = 1, last_seen_ms = $1, updated_ms = $1, ready_ms = NULL
       FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[]) AS u(id, size, mtime, prec, etag)
       WHERE f.id = u.id AND f.state = 'seen'`,
      [
        now,
        ids.slice(from, to),
        v.size.slice(from, to),
        v.mtime.slice(from, to),
        v.precision.slice(from, to),
        v.etag.slice(from, to),
      ],
    );
  }
}

/** Settling rows seen unchanged once more. */
export async function sightVersions(c: Q, now: number, ids: readonly number[]): Promise<void> {
  for (const part of chunks(ids))
    await c.query(
      `UPDATE files SET sightings = sightings + 1, last_seen_ms = $1, updated_ms = $1 WHERE id = ANY($2::bigint[])`,
      [now, part],
    );
}

export async function putDigests(
  c: Q,
  source: string,
  now: number,
  d: { readonly dir: string[]; readonly digest: string[]; readonly rejected: number[] },
): Promise<void> {
  if (d.dir.length === 0) return;
  await c.query(
    `INSERT INTO listing_digests (source, dir, digest, rejected, stored_ms)
     SELECT $1, dir, digest, rejected, $2 FROM unnest($3::text[], $4::text[], $5::int[]) AS u(dir, digest, rejected)
     ON CONFLICT (source, dir) DO UPDATE SET digest = excluded.digest, rejected = excluded.rejected,
       stored_ms = excluded.stored_ms`,
    [source, now, d.dir, d.digest, d.rejected],
  );
}

/** A digest covering rows that changed (or were deleted) must not answer for its directory again. */
export async function dropDigests(c: Q, source: string, dirs: readonly string[]): Promise<void> {
  if (dirs.length === 0) return;
  await c.query('DELETE FROM listing_digests WHERE source = $1 AND dir = ANY($2::text[])', [source, dirs]);
}

/** Readiness in the ledger: instances that do not list this source claim these too. */
export async function markReady(c: Q, now: number, ids: readonly number[]): Promise<void> {
  for (const part of chunks(ids))
    await c.query(
      `UPDATE files SET ready_ms = $1 WHERE id = ANY($2::bigint[]) AND state = 'seen' AND ready_ms IS NULL`,
      [now, part],
    );
}
