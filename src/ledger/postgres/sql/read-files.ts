/** Reads of file rows: by id (in the order asked), one version, a path's history, a filtered list. */
import type { FileQuery, FileRecord } from '../../records.js';
import { type FileRow, toRecord } from '../../rows.js';
import { chunks, type Q } from '../pool.js';

/** Rows by id, in the order given (ids without a row are left out). */
export async function filesByIds(c: Q, ids: readonly number[]): Promise<FileRecord[]> {
  if (ids.length === 0) return [];
  const rows = new Map<number, FileRow>();
  for (const part of chunks(ids)) {
    const r = await c.query<FileRow>('SELECT * FROM files WHERE id = ANY($1::bigint[])', [part]);
    for (const row of r.rows) rows.set(row.id, row);
  }
  return inOrder(ids, rows);
}

/** Rows in the order their ids were asked for. */
export function inOrder(ids: readonly number[], rows: ReadonlyMap<number, FileRow> | readonly FileRow[]): FileRecord[] {
  const byId = rows instanceof Map ? rows : new Map((rows as readonly FileRow[]).map((r) => [r.id, r]));
  return ids.flatMap((id) => {
    const row = byId.get(id);
    return row ? [toRecord(row)] : [];
  });
}

export async function fileById(c: Q, id: number): Promise<FileRecord | undefined> {
  const r = await c.query<FileRow>('SELECT * FROM files WHERE id = $1', [id]);
  return r.rows[0] && toRecord(r.rows[0]);
}

export async function history(c: Q, source: string, p: string): Promise<FileRecord[]> {
  const r = await c.query<FileRow>('SELECT * FROM files WHERE source = $1 AND path = $2 ORDER BY id DESC', [source, p]);
  return r.rows.map(toRecord);
}

export async function queryFiles(c: Q, q: FileQuery): Promise<FileRecord[]> {
  // ILIKE: the same case-insensitive substring match as SQLite's LIKE.
  const r = await c.query<FileRow>(
    `SELECT * FROM files WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR state = $2)
       AND ($3::text IS NULL OR path = $3 OR path ILIKE '%' || $3 || '%')
     ORDER BY id DESC LIMIT $4`,
    [q.source ?? null, q.state ?? null, q.path ?? null, q.limit ?? 100],
  );
  return r.rows.map(toRecord);
}
