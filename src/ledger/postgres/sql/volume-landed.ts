/** Landed file versions of a source the volume stage has not looked at yet, oldest landing first. */
import type { LandedFile } from '../../volume-ledger.js';
import type { Q } from '../pool.js';

export async function landedFiles(c: Q, source: string, sinceMs: number, limit: number): Promise<LandedFile[]> {
  // Superseded versions are left out: their bytes are a newer version's.
  const r = await c.query<{
    id: number;
    path: string;
    size_bytes: number;
    mtime_ms: number;
    local_path: string;
    fetched_ms: number;
  }>(
    `SELECT f.id, f.path, f.size_bytes, f.mtime_ms, f.local_path, f.fetched_ms FROM files f
     WHERE f.source = $1 AND f.fetched_ms >= $2 AND f.local_path IS NOT NULL
       AND f.state IN ('fetched', 'processing', 'processed', 'failed', 'quarantined')
       AND NOT EXISTS (SELECT 1 FROM volume_files vf WHERE vf.file_id = f.id)
     ORDER BY f.fetched_ms, f.id LIMIT $3`,
    [source, sinceMs, limit],
  );
  return r.rows.map((x) => ({
    fileId: x.id,
    path: x.path,
    version: `${x.size_bytes}:${x.mtime_ms}`,
    localPath: x.local_path,
    sizeBytes: x.size_bytes,
    mtimeMs: x.mtime_ms,
    landedMs: x.fetched_ms,
  }));
}
