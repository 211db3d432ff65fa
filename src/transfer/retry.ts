/**
 * Exponential backoff with equal jitter (half the step fixed, half random), bounded: pure, so the
 * schedule is testable. Not full jitter (anywhere from 0 to the step): a retry a few ms after a
 * failure only hits a server that just refused, and the quick in-cycle retries need the floor.
 */

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** 0..1 random source; injectable for tests. */
  random?: () => number;
}

/** Delay before attempt `attempt + 1`, given `attempt` failures so far (1 = first failure). */
export function backoffDelayMs(attempt: number, opts: BackoffOptions): number {
  const random = opts.random ?? Math.random;
  const exp = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  // Half fixed, half random: spreads the retries of many files, none of them at once.
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** Sleep that ends early (rejecting) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
