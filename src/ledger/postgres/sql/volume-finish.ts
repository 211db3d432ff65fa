/**
 * The end of volume runs, in the caller's transaction: the versions this owner still holds are
 * locked, their runs' outcomes written (one statement), and each version's state set from all its
 * runs by the shared verdict (one statement). A version whose claim was lost changes nothing.
 */
import { runEndValues, type VolumeVerdict, volumeVerdict } from '../../core/verdict.js';
import type { VolumeResult } from '../../volume-ledger.js';
import type { MemberRow, VolumeRow, VolumeRunRow } from '../../volume-rows.js';
import type { Q } from '../pool.js';
import { membersOf } from './volume-read.js';
import { volumeRunsOf } from './volume-runs.js';

export interface FinishedVolume {
  readonly result: VolumeResult;
  readonly row: VolumeRow;
  readonly verdict: VolumeVerdict;
  /** The runs that counted for the verdict (the events are built from them). */
  readonly counted: readonly VolumeRunRow[];
  /** Read only when `withMembers` (the events need them). */
  readonly members: readonly MemberRow[];
}

export async function finishVolumes(
  c: Q,
  results: readonly VolumeResult[],
  owner: string,
  nowMs: number,
  withMembers: boolean,
): Promise<FinishedVolume[]> {
  if (results.length === 0) return [];
  const held = new Map(
    (
      await c.query<VolumeRow>(
        'SELECT * FROM volumes WHERE id = ANY($1::bigint[]) AND claimed_by = $2 ORDER BY id FOR UPDATE',
        [results.map((r) => r.id), owner],
      )
    ).rows.map((r) => [r.id, r]),
  );
  const mine = results.filter((r) => held.has(r.id));
  if (mine.length === 0) return [];
  await writeRunEnds(c, mine, nowMs);
  const runs = await volumeRunsOf(
    c,
    mine.map((r) => r.id),
  );
  const members = withMembers
    ? await membersOf(
        c,
        mine.map((r) => r.id),
      )
    : new Map<number, MemberRow[]>();
  const finished = mine.map((result) => {
    const { verdict, counted } = volumeVerdict(runs.get(result.id) ?? [], result.configured, nowMs);
    const row: VolumeRow = {
      ...(held.get(result.id) as VolumeRow),
      state: verdict.state,
      error_code: verdict.code,
      last_error: verdict.error,
      next_retry_ms: verdict.retry,
      claimed_by: null,
      lease_until_ms: null,
      done_ms: verdict.done,
      updated_ms: nowMs,
    };
    return { result, row, verdict, counted, members: members.get(result.id) ?? [] };
  });
  await c.query(
    `UPDATE volumes v SET state = u.state, error_code = u.code, last_error = u.error, next_retry_ms = u.retry,
       claimed_by = NULL, lease_until_ms = NULL, done_ms = u.done, updated_ms = $1
     FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
       AS u(id, state, code, error, retry, done)
     WHERE v.id = u.id`,
    [
      nowMs,
      finished.map((f) => f.row.id),
      finished.map((f) => f.verdict.state),
      finished.map((f) => f.verdict.code),
      finished.map((f) => f.verdict.error),
      finished.map((f) => f.verdict.retry),
      finished.map((f) => f.verdict.done),
    ],
  );
  return finished;
}

/** Every outcome of these results, one upsert (a plugin appears once per volume). */
async function writeRunEnds(c: Q, results: readonly VolumeResult[], nowMs: number): Promise<void> {
  const ends = results.flatMap((r) =>
    r.outcomes.map((o) => ({ id: r.id, plugin: o.plugin, ...runEndValues(o, nowMs) })),
  );
  if (ends.length === 0) return;
  await c.query(
    `INSERT INTO volume_runs (volume_id, plugin, state, attempts, error_code, last_error, duration_ms, next_retry_ms,
       outputs, updated_ms)
     SELECT id, plugin, state, 0, code, error, duration, retry, outputs, $1
     FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::text[],
       $10::int[]) AS u(id, plugin, state, code, error, duration, retry, outputs, uncounted)
     ON CONFLICT (volume_id, plugin) DO UPDATE SET state = excluded.state, error_code = excluded.error_code,
       last_error = excluded.last_error, duration_ms = excluded.duration_ms, next_retry_ms = excluded.next_retry_ms,
       outputs = excluded.outputs, updated_ms = excluded.updated_ms,
       attempts = volume_runs.attempts - (SELECT x.uncounted FROM unnest($2::bigint[], $3::text[], $10::int[])
         AS x(id, plugin, uncounted) WHERE x.id = excluded.volume_id AND x.plugin = excluded.plugin LIMIT 1)`,
    [
      nowMs,
      ends.map((e) => e.id),
      ends.map((e) => e.plugin),
      ends.map((e) => e.state),
      ends.map((e) => e.code),
      ends.map((e) => e.error),
      ends.map((e) => e.duration),
      ends.map((e) => e.retry),
      ends.map((e) => e.outputs),
      ends.map((e) => e.uncounted),
    ],
  );
}
