/**
 * Readiness as a pure function of per-source poll times, so it is tested without a clock or a
 * server. `/readyz` answers from {@link evaluateReadiness}; `/healthz` from {@link HealthReport.live}.
 */

/** How many intervals a source may go without a successful poll before it makes us unready. */
export const DEFAULT_GRACE_INTERVALS = 3;

export interface SourceHealthInput {
  name: string;
  enabled: boolean;
  /** Nominal time between polls (for a cron schedule, the gap between two runs). */
  intervalMs: number;
  /** When the last poll of this source succeeded; undefined when none has yet. */
  lastSuccessAtMs?: number | undefined;
}

export interface ReadinessInput {
  sources: readonly SourceHealthInput[];
  nowMs: number;
  /** When this process started; a source gets its full window to succeed a first time. */
  startedAtMs: number;
  /** @default 3 */
  graceIntervals?: number;
}

export interface UnreadySource {
  source: string;
  reason: 'never_succeeded' | 'stale';
  /** Undefined when the source never succeeded. */
  lastSuccessAtMs?: number;
  /** The window it had: `graceIntervals × intervalMs`. */
  windowMs: number;
}

export interface Readiness {
  ready: boolean;
  /** The enabled sources that are late, in input order. Empty when ready. */
  unready: UnreadySource[];
}

/** What the composition root reports to the HTTP server on each probe. */
export interface HealthReport {
  /** The process and the ledger answer; false makes `/healthz` return 503. */
  live: boolean;
  /** One line per liveness problem (`ledger: database is locked`); never credentials. */
  problems?: readonly string[];
  /** Still up, but something lags (an event sink behind its lagAlert); `/healthz` says degraded. */
  degraded?: readonly string[];
  readiness: Readiness;
}

/**
 * Ready iff every enabled source polled successfully within `graceIntervals` of its interval.
 * A source that has not yet had that long since the process started counts as ready, so a
 * fresh start is not reported unready while the first polls run.
 *
 * @example
 * evaluateReadiness({ nowMs, startedAtMs, sources: [{ name: 'radar', enabled: true, intervalMs: 60_000, lastSuccessAtMs }] })
 */
export function evaluateReadiness(input: ReadinessInput): Readiness {
  const grace = input.graceIntervals ?? DEFAULT_GRACE_INTERVALS;
  const unready: UnreadySource[] = [];
  for (const source of input.sources) {
    if (!source.enabled) continue;
    const windowMs = grace * source.intervalMs;
    if (input.nowMs - input.startedAtMs < windowMs) continue;
    const last = source.lastSuccessAtMs;
    if (last === undefined) {
      unready.push({ source: source.name, reason: 'never_succeeded', windowMs });
    } else if (input.nowMs - last > windowMs) {
      unready.push({ source: source.name, reason: 'stale', lastSuccessAtMs: last, windowMs });
    }
  }
  return { ready: unready.length === 0, unready };
}
