/**
 * The state guards of the transitions, written once: which rows a claim may take, which ones
 * retention may delete, which ones a listing need not look at again. Each guard is a predicate
 * over a row and the same condition as an SQL fragment (plain SQL, valid in SQLite and
 * PostgreSQL), so both backends and the tests agree on it. A fragment takes the placeholder of
 * its time parameter (`@now`, `$4`).
 */
import type { FailedStage, FileState } from '../records.js';

/** The columns a guard reads. */
export interface GuardRow {
  readonly state: FileState;
  readonly stage: FailedStage | null;
  readonly next_retry_ms: number | null;
  readonly done_ms?: number | null;
}

/** A version due for fetching: seen, or a failed fetch whose retry time has come. */
export function isFetchDue(r: GuardRow, nowMs: number): boolean {
  return (
    r.state === 'seen' ||
    (r.state === 'failed' && r.stage === 'fetch' && r.next_retry_ms !== null && r.next_retry_ms <= nowMs)
  );
}
export const fetchDueSql = (now: string): string =>
  `(state = 'seen' OR (state = 'failed' AND stage = 'fetch' AND next_retry_ms <= ${now}))`;

/** A version due for processing: fetched, or failed in a plugin whose retry time has come. */
export function isProcessDue(r: GuardRow, nowMs: number): boolean {
  return (
    r.state === 'fetched' ||
    (r.state === 'failed' && r.stage === 'process' && r.next_retry_ms !== null && r.next_retry_ms <= nowMs)
  );
}
export const processDueSql = (now: string): string =>
  `(state = 'fetched' OR (state = 'failed' AND stage = 'process' AND next_retry_ms <= ${now}))`;

/** States whose rows hold a claim (`claimed_by`, `lease_until_ms`). */
export const CLAIMED_STATES = ['fetching', 'processing'] as const satisfies readonly FileState[];
export const CLAIMED_SQL = `state IN ('fetching', 'processing')`;

/**
 * Done versions retention may delete once past their window: processed, gone, superseded, rejected,
 * seen or failed-to-fetch (a listing skips them now), and quarantined ones given up before the
 * hold. In-flight and plugin-retrying rows are kept.
 */
export function isPrunable(r: GuardRow, quarantinedBeforeMs: number): boolean {
  // A version gone upstream is done like a processed one.
  if (
    r.state === 'processed' ||
    r.state === 'gone' ||
    r.state === 'superseded' ||
    r.state === 'rejected' ||
    r.state === 'seen'
  )
    return true;
  if (r.state === 'failed') return r.stage === 'fetch';
  return r.state === 'quarantined' && r.done_ms != null && r.done_ms < quarantinedBeforeMs;
}
export const prunableSql = (quarantinedBefore: string): string =>
  `(state IN ('processed', 'gone', 'superseded', 'rejected', 'seen') OR (state = 'failed' AND stage = 'fetch')
     OR (state = 'quarantined' AND done_ms < ${quarantinedBefore}))`;

/** States of a version that has landed bytes (the newest fetched mtime of the status page). */
export const LANDED_SQL = `state IN ('fetched', 'processing', 'processed', 'failed') AND local_path IS NOT NULL`;

/** Versions whose partial file may still be resumed. */
export const LIVE_FETCH_SQL = `state IN ('fetching', 'seen', 'failed')`;

/**
 * An unchanged sighting of a row in these states asks nothing of the ledger: it is fetched (plugin
 * retries are driven by due times, not by listings), finished, or refused. Only 'seen' rows
 * (settling) and fetch failures (retried when listed) need each sighting.
 */
const QUIET_STATES: ReadonlySet<FileState> = new Set([
  'fetched',
  'processing',
  'processed',
  'quarantined',
  'rejected',
  'superseded',
]);

export function isQuiet(state: FileState, stage: FailedStage | null): boolean {
  return QUIET_STATES.has(state) || (state === 'failed' && stage === 'process');
}
