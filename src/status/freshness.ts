/**
 * Is a source's data arriving on time? One pure function, used by the status page, `/api/status`
 * and the `poller_source_late` metric, so the wall screen and the alert never disagree.
 */

/** How many cadences without a new file make a late source count as missing (red, not amber). */
export const MISSING_AFTER_CADENCES = 3;

/**
 * `ok`: the newest file is younger than the cadence. `late`: older (amber). `missing`: older than
 * {@link MISSING_AFTER_CADENCES} cadences, or no file at all once the process has been up for one
 * cadence (red). `unknown`: the source has no `expectEvery`.
 */
export type Freshness = 'ok' | 'late' | 'missing' | 'unknown';

export interface FreshnessInput {
  /** The source's `expectEvery`; undefined when it has none. */
  expectEveryMs: number | undefined;
  /** Remote mtime of the newest file fetched from the source; null when none. */
  newestMtimeMs: number | null;
  nowMs: number;
  /** When this process started: a source with no file yet gets one cadence before it is missing. */
  startedAtMs: number;
}

/**
 * @example
 * freshness({ expectEveryMs: 300_000, newestMtimeMs: now - 420_000, nowMs: now, startedAtMs }) // 'late'
 */
export function freshness(input: FreshnessInput): Freshness {
  const every = input.expectEveryMs;
  if (every === undefined) return 'unknown';
  if (input.newestMtimeMs === null) return input.nowMs - input.startedAtMs < every ? 'ok' : 'missing';
  const ageMs = input.nowMs - input.newestMtimeMs;
  if (ageMs <= every) return 'ok';
  return ageMs > MISSING_AFTER_CADENCES * every ? 'missing' : 'late';
}

/** Late or missing: what `poller_source_late` reports as 1. */
export function isLate(f: Freshness): boolean {
  return f === 'late' || f === 'missing';
}
