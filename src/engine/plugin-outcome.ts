/**
 * The decisions shared by file and volume plugins: whether a plugin's previous run lets it run
 * now, and what a run's result records (retry time, quarantine, an interrupted run not counted).
 */
import type { PluginOutcome } from '../ledger/ledger.js';
import type { RunOutcome } from '../plugins/runner.js';
import { backoffDelayMs } from '../transfer/retry.js';

/** The code recorded against a run that was in progress when its poller died. */
export const CRASHED = 'POLLER_PLUGIN_CRASHED';

/** What the ledger remembers of a plugin's previous run on this file or volume. */
export interface PreviousRun {
  readonly state: string;
  readonly attempts: number;
  readonly errorCode: string | null;
  readonly lastError: string | null;
  readonly nextRetryMs: number | null;
}

/**
 * `skip` (done, quarantined, or its retry is not due), `run`, or an outcome to record without
 * running: each run that was in progress when a poller died counted its attempt as it started, so
 * after maxAttempts of them the file or volume is quarantined and cannot crash-loop the poller
 * (under systemd's Restart=, every feed of the host).
 */
export function planRun(
  plugin: string,
  prev: PreviousRun | undefined,
  maxAttempts: number,
  nowMs: number,
): 'skip' | 'run' | PluginOutcome {
  if (prev && (prev.state === 'succeeded' || prev.state === 'quarantined')) return 'skip';
  if (prev?.state === 'failed' && prev.nextRetryMs !== null && prev.nextRetryMs > nowMs) return 'skip';
  if (prev?.state === 'failed' && prev.errorCode === CRASHED && prev.attempts >= maxAttempts) {
    return {
      plugin,
      ok: false,
      errorCode: CRASHED,
      message: `${prev.lastError ?? 'the poller stopped during this run'} (${prev.attempts} attempts)`,
      durationMs: 0,
      outputs: [],
      quarantine: true,
      nextRetryMs: null,
    };
  }
  return 'run';
}

/** The outcome a run records. A run cut short by shutdown is retried at once without using an attempt. */
export function outcomeOf(
  plugin: string,
  out: RunOutcome,
  attempt: number,
  maxAttempts: number,
  nowMs: number,
  retry: { baseMs: number; maxMs: number },
): PluginOutcome {
  const quarantine = !out.ok && !out.interrupted && (out.permanent || attempt >= maxAttempts);
  return {
    plugin,
    ok: out.ok,
    ...(out.errorCode !== undefined && { errorCode: out.errorCode }),
    ...(out.message !== undefined && { message: out.message }),
    durationMs: out.durationMs,
    outputs: out.outputs,
    quarantine,
    ...(out.interrupted && { notCounted: true }),
    nextRetryMs: out.interrupted ? nowMs : out.ok || quarantine ? null : nowMs + backoffDelayMs(attempt, retry),
  };
}
