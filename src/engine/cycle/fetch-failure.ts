/**
 * What a failed fetch means for the file: a pure decision over the error's class (its kind, set
 * by the source's classifier; never a protocol's codes), the attempt and the retry policy. The fetch stage carries it out (ledger, log, sleep).
 */
import { ChangedError, errorCode, PollerError, SourceError, ThrottledError } from '../../errors.js';
import type { FetchFailure } from '../../ledger/ledger.js';
import { backoffDelayMs } from '../../transfer/retry.js';

/** Quick retries inside one cycle for a broken transfer before it waits for a later cycle. */
const IN_CYCLE_ATTEMPTS = 3;
/** A server's Retry-After up to this long is waited out inside the cycle; a longer one, by a later cycle. */
const IN_CYCLE_MAX_WAIT_MS = 5_000;
/** The backoff between those quick retries. */
const IN_CYCLE_BACKOFF = { baseMs: 500, maxMs: 5_000 };

export type FetchFailureDecision =
  /**
   * Give the claim back, no attempt used: the cycle stopped (shutdown, drain, a pause), or the
   * file `changed` under the download (still being written: it settles again).
   */
  | { readonly action: 'release'; readonly changed: boolean }
  /** The source is unusable: record the file's failure (not counted against it) and pause the source. */
  | { readonly action: 'pause'; readonly failure: FetchFailure }
  /** Try again within this cycle after `delayMs`. */
  | { readonly action: 'retry'; readonly delayMs: number }
  /** The file failed: a later cycle retries it, or it is quarantined. `attempts` counts this one. */
  | { readonly action: 'fail'; readonly failure: FetchFailure; readonly attempts: number };

export interface FetchFailureInput {
  readonly err: Error;
  /** The transfer ended because the cycle stopped (its signal aborted, or it never began). */
  readonly stopped: boolean;
  /** This attempt within the cycle, from 1. */
  readonly attempt: number;
  /** The file's fetch attempts recorded before this cycle. */
  readonly fetchAttempts: number;
  readonly nowMs: number;
}

export interface FetchRetryPolicy {
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** 0..1 random source of the backoff's jitter; injectable for tests. */
  readonly random?: () => number;
}

export function decideFetchFailure(input: FetchFailureInput, policy: FetchRetryPolicy): FetchFailureDecision {
  const { err, nowMs } = input;
  if (input.stopped) return { action: 'release', changed: false };
  const code = errorCode(err);
  if (err instanceof SourceError) {
    return {
      action: 'pause',
      failure: { errorCode: code, message: err.message, nextRetryMs: nowMs, quarantine: false, notCounted: true },
    };
  }
  // Not the file's fault: it is still being written.
  if (err instanceof ChangedError) return { action: 'release', changed: true };
  const retryable = isRetryable(err);
  // The server said when to come back (Retry-After): never sooner; past a short wait, a later cycle.
  const throttled = err instanceof ThrottledError;
  const askedWaitMs = (throttled && err.retryAfterMs) || 0;
  const random = policy.random && { random: policy.random };
  if (retryable && input.attempt < IN_CYCLE_ATTEMPTS && askedWaitMs <= IN_CYCLE_MAX_WAIT_MS) {
    return {
      action: 'retry',
      delayMs: Math.max(askedWaitMs, backoffDelayMs(input.attempt, { ...IN_CYCLE_BACKOFF, ...random })),
    };
  }
  const attempts = input.fetchAttempts + 1;
  const quarantine = !throttled && (!retryable || attempts >= policy.maxAttempts);
  const backoff = backoffDelayMs(attempts, { baseMs: policy.retryBaseMs, maxMs: policy.retryMaxMs, ...random });
  return {
    action: 'fail',
    attempts,
    failure: {
      errorCode: code,
      message: err.message,
      nextRetryMs: nowMs + Math.max(askedWaitMs, backoff),
      quarantine,
      notCounted: throttled,
    },
  };
}

function isRetryable(err: Error): boolean {
  if (err instanceof PollerError) return err.retryable;
  // Unclassified errors from the filesystem or a socket: worth another try, bounded by maxAttempts.
  return !(err instanceof TypeError || err instanceof RangeError);
}
