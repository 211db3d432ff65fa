/**
 * Recovery after a crash or a dead peer, decided once: which claims are given back, and what a
 * plugin run left 'running' by a poller that died becomes. Such a run was not recorded as a
 * success, so it runs again; its attempt was counted when it started, so a file whose run kills
 * the poller every time is quarantined after maxAttempts instead of crash-looping.
 */
import type { FileState } from '../records.js';

export const CRASHED_RUN_CODE = 'POLLER_PLUGIN_CRASHED';

/** Recorded against a plugin run that was in progress when its poller died (kill -9, crash, out of memory). */
export const CRASHED_RUN_MESSAGE =
  'the poller stopped during this run (killed, crashed or out of memory); counted as an attempt';

export const CRASHED_VOLUME_RUN_MESSAGE =
  'the poller stopped during this volume run (killed, crashed or out of memory); counted as an attempt';

/** What a claimed row goes back to when its claim is given back (no attempt is counted). */
export const UNCLAIMED_STATE = { fetching: 'seen', processing: 'fetched' } as const satisfies Record<
  'fetching' | 'processing',
  FileState
>;

export interface ClaimRow {
  readonly claimed_by: string | null;
  readonly lease_until_ms: number | null;
}

/** A claim to give back: its lease ran out (or it has none), or its owner is gone. */
export function isStaleClaim(row: ClaimRow, nowMs: number, isOwnerGone: (owner: string) => boolean): boolean {
  if (row.lease_until_ms === null || row.lease_until_ms <= nowMs) return true;
  return row.claimed_by !== null && isOwnerGone(row.claimed_by);
}

/** The stale claims among claimed rows, by the state they hold. */
export function staleClaims<R extends ClaimRow & { readonly state: FileState }>(
  rows: readonly R[],
  nowMs: number,
  isOwnerGone: (owner: string) => boolean,
): { fetching: R[]; processing: R[] } {
  const out = { fetching: [] as R[], processing: [] as R[] };
  for (const row of rows) {
    if (!isStaleClaim(row, nowMs, isOwnerGone)) continue;
    if (row.state === 'fetching') out.fetching.push(row);
    else if (row.state === 'processing') out.processing.push(row);
  }
  return out;
}

/**
 * The crashed-run write: runs left 'running' of versions whose claim was given back (now
 * 'fetched' again) fail, due now. `message` and `now` are the placeholders of their parameters.
 */
export const crashedRunsSql = (message: string, now: string): string =>
  `UPDATE plugin_runs SET state = 'failed', error_code = '${CRASHED_RUN_CODE}', last_error = ${message},
     next_retry_ms = ${now}
   WHERE state = 'running' AND file_id IN (SELECT id FROM files WHERE state = 'fetched')`;
