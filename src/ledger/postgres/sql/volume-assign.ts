/**
 * The membership writes of the volume stage, in the caller's transaction: landed files join their
 * volumes and touched versions are assessed. One source's stage runs at a time across every host
 * (a transaction advisory lock, as SQLite's immediate transaction), so two hosts never start the
 * same volume twice; the joins are the planner's (`core/volume-join.ts`), the writes batched.
 */
import type { CompletenessRules } from '../../../volumes/completeness.js';
import { assessVersion, knownMembers, planJoin } from '../../core/volume-join.js';
import type { MemberArrival } from '../../volume-ledger.js';
import type { MemberRow, VolumeRow } from '../../volume-rows.js';
import type { Q } from '../pool.js';
import { membersOf, volumeRowsByIds } from './volume-read.js';

/** A version that left collecting in this transaction, as it is now. */
export interface ClosedVolume {
  readonly row: VolumeRow;
  readonly members: readonly MemberRow[];
}

/** The volume stage of `source` runs alone until the transaction ends. */
export async function lockVolumeStage(c: Q, source: string): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`poller.volumes:${source}`]);
}

const MEMBER_COLUMNS = 'volume_id, member, file_id, path, file_version, local_path, size_bytes, mtime_ms, landed_ms';

interface MemberPut {
  readonly volume: number;
  readonly a: MemberArrival;
}

/** Pending writes of a batch, flushed before a reopen copies members and at the end. */
class PendingMembership {
  readonly #puts = new Map<string, MemberPut>();
  readonly #belongs = new Map<number, { volume: number; member: string }>();

  put(volume: number, a: MemberArrival): void {
    // The later arrival of one member wins (as one write after the other would).
    const k = `${volume}\0${a.member}`;
    this.#puts.delete(k);
    this.#puts.set(k, { volume, a });
    this.belongs(a.fileId, volume, a.member);
  }

  belongs(fileId: number, volume: number, member: string): void {
    this.#belongs.set(fileId, { volume, member });
  }

  async flush(c: Q): Promise<void> {
    const puts = [...this.#puts.values()];
    this.#puts.clear();
    if (puts.length > 0)
      await c.query(
        `INSERT INTO volume_members (${MEMBER_COLUMNS})
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
           $7::bigint[], $8::bigint[], $9::bigint[])
         ON CONFLICT (volume_id, member) DO UPDATE SET file_id = excluded.file_id, path = excluded.path,
           file_version = excluded.file_version, local_path = excluded.local_path, size_bytes = excluded.size_bytes,
           mtime_ms = excluded.mtime_ms, landed_ms = excluded.landed_ms, forgotten = 0`,
        [
          puts.map((p) => p.volume),
          puts.map((p) => p.a.member),
          puts.map((p) => p.a.fileId),
          puts.map((p) => p.a.path),
          puts.map((p) => p.a.version),
          puts.map((p) => p.a.localPath),
          puts.map((p) => p.a.sizeBytes),
          puts.map((p) => p.a.mtimeMs),
          puts.map((p) => p.a.landedMs),
        ],
      );
    const belongs = [...this.#belongs.entries()];
    this.#belongs.clear();
    if (belongs.length > 0)
      await c.query(
        `INSERT INTO volume_files (file_id, volume_id, member)
         SELECT u.* FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(file_id, volume_id, member)
         WHERE EXISTS (SELECT 1 FROM files f WHERE f.id = u.file_id)
         ON CONFLICT (file_id) DO UPDATE SET volume_id = excluded.volume_id, member = excluded.member`,
        [belongs.map(([f]) => f), belongs.map(([, b]) => b.volume), belongs.map(([, b]) => b.member)],
      );
  }
}

/**
 * Record a batch: `examined` marked as looked at, `arrivals` joined to their volumes; returns the
 * touched versions' ids and those that closed.
 */
export async function assignMembers(
  c: Q,
  source: string,
  arrivals: readonly MemberArrival[],
  examined: readonly number[],
  rules: CompletenessRules,
  nowMs: number,
): Promise<{ touched: number[]; closed: ClosedVolume[] }> {
  await lockVolumeStage(c, source);
  // Looked at already (another host's stage took the same batch): nothing to do for those.
  const seen = new Set(
    (
      await c.query<{ file_id: number }>(
        'SELECT file_id FROM volume_files WHERE file_id = ANY($1::bigint[]) AND volume_id IS NOT NULL',
        [arrivals.map((a) => a.fileId)],
      )
    ).rows.map((r) => r.file_id),
  );
  if (examined.length > 0)
    await c.query(
      `INSERT INTO volume_files (file_id, volume_id) SELECT id, NULL FROM files WHERE id = ANY($1::bigint[])
       ON CONFLICT (file_id) DO NOTHING`,
      [examined],
    );
  const ordered = arrivals
    .filter((a) => !seen.has(a.fileId))
    .sort((a, b) => a.landedMs - b.landedMs || a.fileId - b.fileId);
  if (ordered.length === 0) return { touched: [], closed: [] };
  const latest = await latestVersions(c, source, ordered, nowMs);
  const known = await knownOf(c, [...latest.values()]);
  const pending = new PendingMembership();
  const touched = new Set<number>();
  for (const a of ordered) {
    // Every key has a version by now (latestVersions started the new ones).
    const row = latest.get(a.key) as VolumeRow;
    const plan = planJoin(row, known.get(row.id) ?? new Map(), a, rules);
    if (plan.kind === 'late') {
      // Recorded (`why` tells it arrived late), the volume's runs stand.
      pending.belongs(a.fileId, row.id, a.member);
      continue;
    }
    let id = row.id;
    if (plan.kind === 'reopen') {
      // The copies read the members as written so far.
      await pending.flush(c);
      const next = await reopen(c, row, plan.supersede, a.fields, nowMs);
      latest.set(a.key, next);
      id = next.id;
    }
    pending.put(id, a);
    touched.add(id);
  }
  await pending.flush(c);
  const ids = [...touched];
  return { touched: ids, closed: await assessVersions(c, ids, rules, nowMs) };
}

/** The latest version of each key of the batch; the keys without one get version 1 (one statement). */
async function latestVersions(
  c: Q,
  source: string,
  ordered: readonly MemberArrival[],
  nowMs: number,
): Promise<Map<string, VolumeRow>> {
  const keys = [...new Set(ordered.map((a) => a.key))];
  const r = await c.query<VolumeRow>(
    'SELECT DISTINCT ON (key) * FROM volumes WHERE source = $1 AND key = ANY($2::text[]) ORDER BY key, version DESC',
    [source, keys],
  );
  const latest = new Map(r.rows.map((row) => [row.key, row]));
  const firsts = new Map<string, MemberArrival>();
  for (const a of ordered) if (!latest.has(a.key) && !firsts.has(a.key)) firsts.set(a.key, a);
  const created = await insertVersions(
    c,
    source,
    [...firsts.values()].map((a) => ({ key: a.key, version: 1, fields: a.fields, at: a.landedMs })),
    nowMs,
  );
  for (const row of created) latest.set(row.key, row);
  return latest;
}

/** Known members of the versions that left collecting (the late-member rule reads them). */
async function knownOf(c: Q, rows: readonly VolumeRow[]): Promise<Map<number, Map<string, string>>> {
  const closed = rows.filter((r) => r.state !== 'collecting').map((r) => r.id);
  const members = await membersOf(c, closed);
  return new Map([...members].map(([id, ms]) => [id, knownMembers(ms)]));
}

async function insertVersions(
  c: Q,
  source: string,
  versions: ReadonlyArray<{ key: string; version: number; fields: Readonly<Record<string, string>>; at: number }>,
  nowMs: number,
  first?: number,
  last?: number,
): Promise<VolumeRow[]> {
  if (versions.length === 0) return [];
  const r = await c.query<VolumeRow>(
    `INSERT INTO volumes (source, key, version, digest, fields, state, first_member_ms, last_member_ms, updated_ms)
     SELECT $1, key, version, '', fields, 'collecting', coalesce($5, at), coalesce($6, at), $7
     FROM unnest($2::text[], $3::int[], $4::text[], $8::bigint[]) AS u(key, version, fields, at)
     RETURNING *`,
    [
      source,
      versions.map((v) => v.key),
      versions.map((v) => v.version),
      versions.map((v) => JSON.stringify(v.fields)),
      first ?? null,
      last ?? null,
      nowMs,
      versions.map((v) => v.at),
    ],
  );
  return r.rows;
}

/** The next version of a volume that left collecting: its members (and late ones) carried over. */
async function reopen(
  c: Q,
  row: VolumeRow,
  supersede: boolean,
  fields: Readonly<Record<string, string>>,
  nowMs: number,
): Promise<VolumeRow> {
  // Only if nobody claimed it since it was read: a version being run is not superseded.
  if (supersede)
    await c.query(
      `UPDATE volumes SET state = 'superseded', done_ms = $2, next_retry_ms = NULL, updated_ms = $2
       WHERE id = $1 AND claimed_by IS NULL AND state IN ('complete', 'partial', 'failed')`,
      [row.id, nowMs],
    );
  const [next] = await insertVersions(
    c,
    row.source,
    [{ key: row.key, version: row.version + 1, fields, at: row.first_member_ms }],
    nowMs,
    row.first_member_ms,
    row.last_member_ms,
  );
  const to = (next as VolumeRow).id;
  await c.query(
    `INSERT INTO volume_members (${MEMBER_COLUMNS})
     SELECT $2, member, file_id, path, file_version, local_path, size_bytes, mtime_ms, landed_ms
     FROM volume_members WHERE volume_id = $1 AND forgotten = 0`,
    [row.id, to],
  );
  // Late members: files recorded against the old version for a member it did not have (a file
  // that replaced a member while collecting is not one); the latest per member wins.
  await c.query(
    `INSERT INTO volume_members (${MEMBER_COLUMNS})
     SELECT DISTINCT ON (vf.member) $2::bigint, vf.member, f.id, f.path, f.size_bytes || ':' || f.mtime_ms, f.local_path,
       f.size_bytes, f.mtime_ms, f.fetched_ms
     FROM volume_files vf JOIN files f ON f.id = vf.file_id
     WHERE vf.volume_id = $1 AND vf.member IS NOT NULL AND f.local_path IS NOT NULL
       AND vf.member NOT IN (SELECT member FROM volume_members WHERE volume_id = $1)
     ORDER BY vf.member, f.fetched_ms DESC, f.id DESC
     ON CONFLICT (volume_id, member) DO NOTHING`,
    [row.id, to],
  );
  return next as VolumeRow;
}

/** Digest, member times and (for collecting versions) the state of these versions, in one write. */
export async function assessVersions(
  c: Q,
  ids: readonly number[],
  rules: CompletenessRules,
  nowMs: number,
): Promise<ClosedVolume[]> {
  const rows = await volumeRowsByIds(c, ids);
  const members = await membersOf(c, ids);
  const writes: VolumeRow[] = [];
  const closed: ClosedVolume[] = [];
  for (const id of ids) {
    const row = rows.get(id);
    const ms = members.get(id) ?? [];
    const a = row && assessVersion(row, ms, rules, nowMs);
    if (!row || !a) continue;
    const now: VolumeRow = {
      ...row,
      digest: a.digest,
      first_member_ms: a.first,
      last_member_ms: a.last,
      state: a.state,
      partial: a.partial,
      closed_ms: a.closed,
      updated_ms: nowMs,
    };
    writes.push(now);
    if (a.closes) closed.push({ row: now, members: ms });
  }
  if (writes.length > 0)
    await c.query(
      `UPDATE volumes v SET digest = u.digest, first_member_ms = u.first, last_member_ms = u.last, state = u.state,
         partial = u.partial, closed_ms = u.closed, updated_ms = $1
       FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::int[], $8::bigint[])
         AS u(id, digest, first, last, state, partial, closed)
       WHERE v.id = u.id`,
      [
        nowMs,
        writes.map((w) => w.id),
        writes.map((w) => w.digest),
        writes.map((w) => w.first_member_ms),
        writes.map((w) => w.last_member_ms),
        writes.map((w) => w.state),
        writes.map((w) => w.partial),
        writes.map((w) => w.closed_ms),
      ],
    );
  return closed;
}

/** Collecting versions of a source whose quiet time has passed, assessed (the stage's lock held). */
export async function closeDue(c: Q, source: string, rules: CompletenessRules, nowMs: number): Promise<ClosedVolume[]> {
  if (rules.completeAfterMs === undefined) return [];
  await lockVolumeStage(c, source);
  return assessVersions(c, await quietVersions(c, source, rules, nowMs), rules, nowMs);
}

/** Collecting versions of a source whose quiet time has passed (a read: the stage asks first, without the lock). */
export async function quietVersions(c: Q, source: string, rules: CompletenessRules, nowMs: number): Promise<number[]> {
  if (rules.completeAfterMs === undefined) return [];
  const r = await c.query<{ id: number }>(
    `SELECT id FROM volumes WHERE source = $1 AND state = 'collecting' AND last_member_ms <= $2 ORDER BY id`,
    [source, nowMs - rules.completeAfterMs],
  );
  return r.rows.map((x) => x.id);
}
