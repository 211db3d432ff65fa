/**
 * The end of a processing pass, decided once for every backend: the values a plugin run's end
 * writes, and the state a file (or a radar volume version) ends in after its plugins ran.
 */
import type { FailedStage, FileState, PluginOutcome, PluginRunState } from '../records.js';

/** Error text stored in the ledger: one line, bounded. */
export function clip(text: string): string {
  const line = text.replace(/\s*\n\s*/g, ' ');
  return line.length > 1000 ? `${line.slice(0, 997)}...` : line;
}

/** The values a plugin run's end writes (the same columns for file and volume runs, in every backend). */
export function runEndValues(o: PluginOutcome, nowMs: number) {
  return {
    state: (o.ok ? 'succeeded' : o.quarantine ? 'quarantined' : 'failed') as PluginRunState,
    code: o.ok ? null : (o.errorCode ?? 'POLLER_PLUGIN_FAILED'),
    error: o.ok ? null : clip(o.message ?? 'failed'),
    duration: Math.round(o.durationMs),
    retry: o.ok || o.quarantine ? null : (o.nextRetryMs ?? nowMs),
    outputs: JSON.stringify(o.outputs),
    uncounted: o.notCounted ? 1 : 0,
  };
}

/** The columns of a run a verdict reads (the run as it stands after this pass was written). */
export interface VerdictRun {
  readonly plugin: string;
  readonly state: PluginRunState;
  readonly error_code: string | null;
  readonly last_error: string | null;
  readonly next_retry_ms: number | null;
}

export interface ProcessingVerdict {
  readonly state: FileState;
  readonly stage: FailedStage | null;
  readonly code: string | null;
  readonly error: string | null;
  readonly retry: number | null;
  readonly done: number | null;
}

/** The soonest retry of the failed runs (now for a run without a time). */
function soonestRetry(failed: readonly VerdictRun[], nowMs: number): number {
  return Math.min(...failed.map((r) => r.next_retry_ms ?? nowMs));
}

/**
 * A file's state after a processing pass, from this pass's outcomes and all its runs (earlier
 * passes count too): processed only when every matching plugin succeeded; failed while a run
 * may be retried; quarantined when every failed run is.
 */
export function processingVerdict(
  outcomes: readonly PluginOutcome[],
  runs: readonly VerdictRun[],
  nowMs: number,
): ProcessingVerdict {
  let retry: number | null = null;
  let firstError: PluginOutcome | undefined;
  let anyRetryable = false;
  for (const o of outcomes) {
    if (o.ok) continue;
    firstError ??= o;
    if (!o.quarantine) {
      anyRetryable = true;
      const at = o.nextRetryMs ?? nowMs;
      retry = retry === null ? at : Math.min(retry, at);
    }
  }
  const failedRuns = runs.filter((r) => r.state === 'failed');
  const quarantinedRuns = runs.filter((r) => r.state === 'quarantined');
  let state: FileState;
  if (failedRuns.length === 0 && quarantinedRuns.length === 0) state = 'processed';
  else if (anyRetryable || failedRuns.length > 0) state = 'failed';
  else state = 'quarantined';
  if (state === 'failed' && retry === null) retry = soonestRetry(failedRuns, nowMs);
  const errRun = failedRuns[0] ?? quarantinedRuns[0];
  const processed = state === 'processed';
  return {
    state,
    stage: processed ? null : 'process',
    code: processed ? null : (firstError?.errorCode ?? errRun?.error_code ?? null),
    error: processed
      ? null
      : clip(
          firstError
            ? `${firstError.plugin}: ${firstError.message ?? 'failed'}`
            : `${errRun?.plugin}: ${errRun?.last_error ?? 'failed'}`,
        ),
    retry: state === 'failed' ? retry : null,
    done: state === 'failed' ? null : nowMs,
  };
}

export interface VolumeVerdict {
  readonly state: 'processed' | 'failed' | 'quarantined';
  readonly code: string | null;
  readonly error: string | null;
  readonly retry: number | null;
  readonly done: number | null;
}

/**
 * A volume version's state after a pass, from all its runs. Runs of plugins removed from the
 * config (`configured` given and without them) are owed nothing, else such a volume stays failed
 * forever. Returns the runs that counted, too (its events are built from them).
 */
export function volumeVerdict<R extends VerdictRun>(
  runs: readonly R[],
  configured: readonly string[] | undefined,
  nowMs: number,
): { verdict: VolumeVerdict; counted: R[] } {
  const counted = runs.filter((run) => !configured || configured.includes(run.plugin));
  const failed = counted.filter((r) => r.state === 'failed');
  const quarantined = counted.filter((r) => r.state === 'quarantined');
  const state = failed.length > 0 ? 'failed' : quarantined.length > 0 ? 'quarantined' : 'processed';
  const errRun = failed[0] ?? quarantined[0];
  return {
    verdict: {
      state,
      code: errRun?.error_code ?? null,
      error: errRun ? clip(`${errRun.plugin}: ${errRun.last_error ?? 'failed'}`) : null,
      retry: state === 'failed' ? soonestRetry(failed, nowMs) : null,
      done: state === 'failed' ? null : nowMs,
    },
    counted,
  };
}
