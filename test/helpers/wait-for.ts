import { setTimeout as delay } from 'node:timers/promises';

export interface WaitForOptions {
  /** Give up after this long. @default 5000 */
  timeoutMs?: number;
  /** Pause between two checks. @default 20 */
  intervalMs?: number;
  /** Named in the error when the condition never holds. */
  what?: string;
}

/**
 * Polls `check` until it returns a truthy value (returned) or the timeout passes (throws).
 * A check that throws counts as "not yet"; its last error is attached as `cause`.
 */
export async function waitFor<T>(check: () => T | Promise<T>, opts: WaitForOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`waitFor: ${opts.what ?? 'condition'} not met within ${timeoutMs} ms`, { cause: lastError });
    }
    await delay(intervalMs);
  }
}
