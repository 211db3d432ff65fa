/** Reads of volume versions: by id (with their members), the CLI's queries, a path's volumes, counts. */
import type { VolumeCounts, VolumeQuery, VolumeRecord, VolumeState } from '../../volume-ledger.js';
import { type MemberRow, toVolumeRecord, type VolumeRow } from '../../volume-rows.js';
import type { Q } from '../pool.js';

/** Members of each version, by volume id then member (versions without members map to an empty list). */
export async function membersOf(c: Q, ids: readonly number[]): Promise<Map<number, MemberRow[]>> {
  const out = new Map<number, MemberRow[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const r = await c.query<MemberRow>(
    'SELECT * FROM volume_members WHERE volume_id = ANY($1::bigint[]) ORDER BY volume_id, member',
    [ids],
  );
  for (const m of r.rows) out.get(m.volume_id)?.push(m);
  return out;
}

export async function volumeRowsByIds(c: Q, ids: readonly number[]): Promise<Map<number, VolumeRow>> {
  if (ids.length === 0) return new Map();
  const r = await c.query<VolumeRow>('SELECT * FROM volumes WHERE id = ANY($1::bigint[])', [ids]);
  return new Map(r.rows.map((row) => [row.id, row]));
}

/** Records of these rows with their members, in the order given (two statements). */
export async function recordsOf(c: Q, rows: readonly VolumeRow[]): Promise<VolumeRecord[]> {
  const members = await membersOf(
    c,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toVolumeRecord(r, members.get(r.id) ?? []));
}

/** Records by id, in the order given (ids without a row are left out). */
export async function volumesByIds(c: Q, ids: readonly number[]): Promise<VolumeRecord[]> {
  const rows = await volumeRowsByIds(c, ids);
  return recordsOf(
    c,
    ids.flatMap((id) => rows.get(id) ?? []),
  );
}

export async function queryVolumes(c: Q, q: VolumeQuery): Promise<VolumeRecord[]> {
  const r = await c.query<VolumeRow>(
    `SELECT * FROM volumes WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR state = $2)
       AND ($3::text IS NULL OR key = $3) ORDER BY last_member_ms DESC, id DESC LIMIT $4`,
    [q.source ?? null, q.state ?? null, q.key ?? null, q.limit ?? 100],
  );
  return recordsOf(c, r.rows);
}

export async function volumesOfPath(c: Q, source: string, p: string): Promise<VolumeRecord[]> {
  const r = await c.query<VolumeRow>(
    `SELECT v.* FROM volumes v WHERE v.source = $1 AND (
       v.id IN (SELECT volume_id FROM volume_members WHERE path = $2)
       OR v.id IN (SELECT vf.volume_id FROM volume_files vf JOIN files f ON f.id = vf.file_id
                   WHERE f.source = $1 AND f.path = $2))
     ORDER BY v.version DESC`,
    [source, p],
  );
  return recordsOf(c, r.rows);
}

export async function volumeCounts(c: Q): Promise<VolumeCounts[]> {
  const r = await c.query<{ source: string; state: VolumeState; count: number; oldest: number | null }>(
    `SELECT source, state, count(*)::int AS count, min(last_member_ms) AS oldest FROM volumes
     GROUP BY source, state ORDER BY source, state`,
  );
  return r.rows.map((x) => ({ source: x.source, state: x.state, count: x.count, oldestLastMemberMs: x.oldest }));
}
