/**
 * The end of processing passes, in the caller's transaction: the files this owner still holds
 * are locked, their runs' ends written, each file's verdict (`core/verdict.ts`) taken from all
 * its runs and written. Files whose claim was lost are not written at all.
 */
import { type ProcessingVerdict, processingVerdict } from '../../core/verdict.js';
import type { ProcessingResult } from '../../records.js';
import type { FileRow, RunRow } from '../../rows.js';
import type { Q } from '../pool.js';
import { runsOf } from './plugin-runs.js';
import { RUN_ENDS_UNNEST, runEndArrays } from './run-ends.js';

export interface FinishedFile {
  readonly result: ProcessingResult;
  readonly row: FileRow;
  readonly runs: readonly RunRow[];
}

/** The processed files (claim held), with their rows as written and their runs. */
export async function finishProcessing(
  c: Q,
  results: readonly ProcessingResult[],
  owner: string,
  nowMs: number,
): Promise<FinishedFile[]> {
  const held = await lockHeld(
    c,
    results.map((r) => r.id),
    owner,
  );
  const mine = results.filter((r) => held.has(r.id));
  if (mine.length === 0) return [];
  await endRuns(c, mine, nowMs);
  // Runs of earlier passes count too: a file is processed only when every matching plugin succeeded.
  const runs = await runsOf(
    c,
    mine.map((m) => m.id),
  );
  const verdicts = mine.map((m) => processingVerdict(m.outcomes, runs.get(m.id) ?? [], nowMs));
  const rows = await writeVerdicts(c, mine, verdicts, owner, nowMs);
  return mine.flatMap((result) => {
    const row = rows.get(result.id);
    return row ? [{ result, row, runs: runs.get(result.id) ?? [] }] : [];
  });
}

/** Lock the files this owner still holds; the others are left alone. */
async function lockHeld(c: Q, ids: readonly number[], owner: string): Promise<Set<number>> {
  const r = await c.query<{ id: number }>(
    `SELECT id FROM files WHERE id = ANY($1::bigint[]) AND claimed_by = $2 AND state = 'processing'
     ORDER BY id FOR UPDATE`,
    [ids, owner],
  );
  return new Set(r.rows.map((x) => x.id));
}

async function endRuns(c: Q, mine: readonly ProcessingResult[], nowMs: number): Promise<void> {
  const ends = runEndArrays(mine, nowMs);
  if (!ends) return;
  await c.query(
    `UPDATE plugin_runs p SET state = u.state, error_code = u.code, last_error = u.error, duration_ms = u.duration,
       next_retry_ms = u.retry, outputs = u.outputs::jsonb, updated_ms = $1, attempts = p.attempts - u.uncounted
     FROM ${RUN_ENDS_UNNEST}
     WHERE p.file_id = u.id AND p.plugin = u.plugin`,
    [nowMs, ...ends],
  );
}

async function writeVerdicts(
  c: Q,
  mine: readonly ProcessingResult[],
  v: readonly ProcessingVerdict[],
  owner: string,
  nowMs: number,
): Promise<Map<number, FileRow>> {
  const r = await c.query<FileRow>(
    `UPDATE files f SET state = u.state, stage = u.stage, error_code = u.code, last_error = u.error,
       next_retry_ms = u.retry, claimed_by = NULL, lease_until_ms = NULL, done_ms = u.done, updated_ms = $1
     FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
       AS u(id, state, stage, code, error, retry, done)
     WHERE f.id = u.id AND f.claimed_by = $9 AND f.state = 'processing'
     RETURNING f.*`,
    [
      nowMs,
      mine.map((m) => m.id),
      v.map((x) => x.state),
      v.map((x) => x.stage),
      v.map((x) => x.code),
      v.map((x) => x.error),
      v.map((x) => x.retry),
      v.map((x) => x.done),
      owner,
    ],
  );
  return new Map(r.rows.map((row) => [row.id, row]));
}
