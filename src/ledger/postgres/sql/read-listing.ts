/** A listing's reads: the stored digests of its directories, and the latest row of each listed path. */
import type { StoredDigest } from '../../core/sighting.js';
import type { LatestRow } from '../../rows.js';
import { chunks, type Q } from '../pool.js';

export async function readDigests(c: Q, source: string, dirs: readonly string[]): Promise<Map<string, StoredDigest>> {
  const stored = new Map<string, StoredDigest>();
  for (const part of chunks(dirs)) {
    const r = await c.query<{ dir: string; digest: string; rejected: number }>(
      'SELECT dir, digest, rejected FROM listing_digests WHERE source = $1 AND dir = ANY($2::text[])',
      [source, part],
    );
    for (const row of r.rows) stored.set(row.dir, row);
  }
  return stored;
}

export async function readLatest(c: Q, source: string, paths: readonly string[]): Promise<Map<string, LatestRow>> {
  const latest = new Map<string, LatestRow>();
  for (const part of chunks(paths)) {
    const r = await c.query<LatestRow & { path: string }>(
      `SELECT DISTINCT ON (path) path, id, size_bytes, mtime_ms, mtime_precision, state, stage, sightings, next_retry_ms, etag
       FROM files WHERE source = $1 AND path = ANY($2::text[]) ORDER BY path, id DESC`,
      [source, part],
    );
    for (const row of r.rows) latest.set(row.path, row);
  }
  return latest;
}
