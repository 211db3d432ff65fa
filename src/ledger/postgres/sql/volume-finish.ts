/**
 * The end of volume runs, in the caller's transaction: the versions this owner still holds are
 * locked, their runs' outcomes written (one statement), and each version's state set from all its
 * runs by the shared verdict (one statement). A version whose claim was lost changes nothing.
 */
import { type VolumeVerdict, volumeVerdict } from '../../core/verdict.js';
import type { VolumeResult } from '../../volume-ledger.js';
import type { MemberRow, VolumeRow, VolumeRunRow } from '../../volume-rows.js';
import type { Q } from '../pool.js';
import { RUN_ENDS_UNNEST, runEndArrays } from './run-ends.js';
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

/**
 * Every outcome of these results: the runs that started are updated (an attempt that did not
 * count given back), an outcome without a started run is inserted (two statements, any batch size).
 */
async function writeRunEnds(c: Q, results: readonly VolumeResult[], nowMs: number): Promise<void> {
  const ends = runEndArrays(results, nowMs);
  if (!ends) return;
  await c.query(
    `UPDATE volume_runs r SET state = u.state, error_code = u.code, last_error = u.error, duration_ms = u.duration,
       next_retry_ms = u.retry, outputs = u.outputs, updated_ms = $1, attempts = r.attempts - u.uncounted
     FROM ${RUN_ENDS_UNNEST}
     WHERE r.volume_id = u.id AND r.plugin = u.plugin`,
    [nowMs, ...ends],
  );
  await c.query(
    `INSERT INTO volume_runs (volume_id, plugin, state, attempts, error_code, last_error, duration_ms, next_retry_ms,
       outputs, updated_ms)
     SELECT u.id, u.plugin, u.state, 0, u.code, u.error, u.duration, u.retry, u.outputs, $1 FROM ${RUN_ENDS_UNNEST}
     ON CONFLICT (volume_id, plugin) DO NOTHING`,
    [nowMs, ...ends],
  );
}
