/** Exponential backoff with full jitter, bounded: pure, so the schedule is testable. */

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
  // Half fixed, half random: spreads retries of many files without ever retrying at once.
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
