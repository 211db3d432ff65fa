/**
 * What every stage of one cycle shares: the source, its config, the dependencies, the options,
 * the summary being filled in and the group commits. Built once per cycle; stages take it whole
 * instead of a varying list of positional parameters.
 */
import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import type { SourceConfig } from '../../config/load.js';
import type { SourceError } from '../../errors.js';
import type { Source } from '../../sources/source.js';
import { LedgerCommits } from './commits.js';
import type { CycleDeps, CycleEvents, CycleOptions, CycleSummary } from './types.js';

/** Claims are held this long without renewal; renewed every third of it while work goes on. */
export const LEASE_MS = 10 * 60_000;

/** Listeners the cycle's signals may carry before Node warns of a leak (in-flight work is bounded by config). */
const MAX_SIGNAL_LISTENERS = 10_000;

export interface CycleContext {
  readonly src: SourceConfig;
  readonly source: Source;
  readonly deps: CycleDeps;
  readonly opts: CycleOptions;
  /** The source's child logger. */
  readonly log: Logger;
  /** The caller's hooks, each wrapped so that a throwing hook is ignored. */
  readonly emit: CycleEvents;
  readonly summary: CycleSummary;
  readonly commits: LedgerCommits;
  readonly now: () => number;
  readonly startedMs: number;
  /** How long a claim on a file lasts unless renewed. */
  readonly claimLeaseMs: number;
  /** Files claimed so far in this cycle and their total size (a progress display's 100 %). */
  readonly claimed: { files: number; bytes: number };
  /** The SourceError that paused the source in this cycle: transfers not yet begun are given back. */
  pausedBy: SourceError | undefined;
}

export function createCycleContext(
  src: SourceConfig,
  source: Source,
  deps: CycleDeps,
  opts: CycleOptions,
): CycleContext {
  // Every transfer, listing and pool wait of every source listens on the shared signal; Node's
  // default of 10 listeners before a leak warning is far below a normal cycle's count.
  setMaxListeners(MAX_SIGNAL_LISTENERS, opts.signal, ...(opts.drainSignal ? [opts.drainSignal] : []));
  const now = deps.now ?? Date.now;
  const log = deps.log.child({ source: src.name });
  const claimLeaseMs = deps.claimLeaseMs ?? LEASE_MS;
  return {
    src,
    source,
    deps,
    opts,
    log,
    emit: safeEvents(deps.events, log),
    summary: emptySummary(src.name),
    commits: new LedgerCommits(deps.ledger, deps.owner, now, claimLeaseMs),
    now,
    startedMs: now(),
    claimLeaseMs,
    claimed: { files: 0, bytes: 0 },
    pausedBy: undefined,
  };
}

/** The cycle takes nothing more: the source paused, or a drain or shutdown began. */
export function isStopped(ctx: CycleContext): boolean {
  return ctx.pausedBy !== undefined || ctx.opts.signal.aborted || ctx.opts.drainSignal?.aborted === true;
}

function emptySummary(name: string): CycleSummary {
  return {
    name,
    listed: 0,
    new: 0,
    fetched: 0,
    bytes: 0,
    processed: 0,
    failed: 0,
    skipped: 0,
    settling: 0,
    rejected: 0,
    batches: 0,
    readyLeft: 0,
  };
}

function safeEvents(events: CycleEvents | undefined, log: Logger): CycleEvents {
  if (!events) return {};
  const wrapped: CycleEvents = {};
  for (const [key, fn] of Object.entries(events)) {
    if (typeof fn !== 'function') continue;
    (wrapped as Record<string, unknown>)[key] = (...args: unknown[]) => {
      try {
        (fn as (...a: unknown[]) => void).apply(events, args);
      } catch (err) {
        log.debug({ err, hook: key }, 'event hook threw; ignored');
      }
    };
  }
  return wrapped;
}

/** The summary as the cycle's last log line carries it: counts only. */
export function summaryForLog(s: CycleSummary): Record<string, unknown> {
  const { name: _name, volumes, ...rest } = s;
  // The log line carries counts; `poller volumes` lists the collecting ones.
  if (!volumes) return rest;
  const { collecting, ...counts } = volumes;
  return { ...rest, volumes: { ...counts, collecting: collecting.length } };
}
