/**
 * The daemon's clock: one loop per enabled source that runs a poll cycle on the source's cron
 * `schedule` or `every` interval, with a small jitter so sources on one server do not all
 * connect in the same second. A source's next cycle never starts before its previous one ended;
 * an unusable source (SourceError: login, TLS, host) backs off on a slow, doubling schedule
 * instead of failing on every tick. Sources with change notifications (local directories) get
 * an early cycle when something changes; their schedule still runs, since events can be lost.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { coerceError, errorCode } from '../errors.js';

/** What the scheduler needs to know about a source. */
export interface ScheduledSource {
  readonly name: string;
  readonly enabled: boolean;
  readonly schedule?: string;
  readonly everyMs?: number;
}

/** How a cycle went, as far as scheduling cares. */
export interface CycleOutcome {
  /** The source is unusable (SourceError): back off instead of polling on schedule. */
  paused: boolean;
  /** Ready files were left over the cycle's cap: run the next cycle at once. */
  more?: boolean;
}

export interface SchedulerOptions<S extends ScheduledSource> {
  /** One poll cycle of `src`. A throw is logged and counts as a cycle that was not paused. */
  runCycle(src: S): Promise<CycleOutcome>;
  /**
   * Start change notifications for `src`, calling `onChange` on each; stop when `signal` aborts.
   * Return undefined when the source has none.
   */
  watch?(src: S, onChange: () => void, signal: AbortSignal): Promise<void> | undefined;
  log: Logger;
  /** Aborting stops scheduling: no cycle starts after it; running cycles are left to finish. */
  signal: AbortSignal;
  /** @default Math.random */
  random?: () => number;
  /** @default Date.now */
  now?: () => number;
}

/** Poll interval of a source with neither `schedule` nor `every`. */
export const DEFAULT_INTERVAL_MS = 60_000;
/** Jitter is at most a tenth of the interval, and never more than this. */
const MAX_JITTER_MS = 5_000;
/** The first cycle after start waits at most this: a restart catches up promptly. */
const MAX_START_JITTER_MS = 1_000;
/** A change notification starts a cycle after this quiet time, so a burst of writes is one cycle. */
const WATCH_DEBOUNCE_MS = 250;
/** The longest a paused source waits between attempts. */
const MAX_PAUSE_BACKOFF_MS = 3_600_000;
/** The first wait of a paused source, for schedules of a minute and more. */
const BASE_PAUSE_BACKOFF_MS = 300_000;

/** The nominal time between two cycles: the interval, or the gap between the next two cron runs. */
export function nominalIntervalMs(src: ScheduledSource): number {
  if (src.everyMs !== undefined) return Math.max(1, src.everyMs);
  if (src.schedule !== undefined) {
    const task = cron.createTask(src.schedule, () => undefined, { timezone: 'UTC' });
    try {
      const [a, b] = task.getNextRuns(2);
      if (a && b) return Math.max(1_000, b.getTime() - a.getTime());
    } finally {
      void task.destroy();
    }
  }
  return DEFAULT_INTERVAL_MS;
}

/**
 * How long a paused source waits before attempt `n` (1-based): 5 min doubling to 1 h for
 * schedules of a minute and more; for faster schedules it scales down with the interval
 * (5 intervals doubling to 60), never below one interval.
 */
export function pauseBackoffMs(intervalMs: number, n: number): number {
  const base = Math.max(intervalMs, Math.min(BASE_PAUSE_BACKOFF_MS, 5 * intervalMs));
  const cap = Math.max(base, Math.min(MAX_PAUSE_BACKOFF_MS, 12 * base));
  return Math.min(cap, base * 2 ** Math.min(Math.max(0, n - 1), 20));
}

export interface Scheduler<S extends ScheduledSource> {
  /**
   * Start, stop or update the loops to match `sources` (start-up and config reload). A changed
   * source takes its new settings from its next cycle on; a running cycle is not interrupted.
   */
  update(sources: readonly S[]): void;
  /** Sources whose cycle is running now. */
  running(): string[];
  /** Resolves when every loop has ended: after the stop signal, once running cycles finish. */
  idle(): Promise<void>;
}

export function createScheduler<S extends ScheduledSource>(opts: SchedulerOptions<S>): Scheduler<S> {
  const loops = new Map<string, SourceLoop<S>>();
  const ended: Promise<void>[] = [];
  return {
    update(sources) {
      if (opts.signal.aborted) return;
      const wanted = new Map(sources.filter((s) => s.enabled).map((s) => [s.name, s]));
      for (const [name, loop] of loops) {
        if (!wanted.has(name)) {
          loop.stop();
          loops.delete(name);
        }
      }
      for (const [name, src] of wanted) {
        const loop = loops.get(name);
        if (loop) loop.replace(src);
        else {
          const created = new SourceLoop(src, opts);
          loops.set(name, created);
          ended.push(created.done);
        }
      }
    },
    running: () => [...loops.values()].filter((l) => l.busy).map((l) => l.src.name),
    async idle() {
      // Loops stopped by a reload are in `ended` too; each settles once its cycle is over.
      await Promise.all(ended);
    },
  };
}

class SourceLoop<S extends ScheduledSource> {
  src: S;
  busy = false;
  readonly done: Promise<void>;
  readonly #opts: SchedulerOptions<S>;
  readonly #stop = new AbortController();
  readonly #log: Logger;
  #cron: ScheduledTask | undefined;
  #watch: AbortController | undefined;
  /** Wakes the current wait: 'trigger' (a change), 'replace' (new settings), 'stop'. */
  #wake: ((why: 'trigger' | 'replace' | 'stop') => void) | undefined;
  #pendingTrigger = false;
  #replaced = false;
  #pauses = 0;
  #lastStartMs: number | undefined;

  constructor(src: S, opts: SchedulerOptions<S>) {
    this.src = src;
    this.#opts = opts;
    this.#log = opts.log.child({ source: src.name });
    const onStop = () => this.stop();
    opts.signal.addEventListener('abort', onStop, { once: true });
    this.#configure();
    this.done = this.#run().finally(() => {
      opts.signal.removeEventListener('abort', onStop);
      void this.#cron?.destroy();
      this.#watch?.abort();
    });
  }

  stop(): void {
    this.#stop.abort();
    this.#wake?.('stop');
  }

  replace(src: S): void {
    this.src = src;
    this.#replaced = true;
    this.#configure();
    this.#wake?.('replace');
  }

  #configure(): void {
    void this.#cron?.destroy();
    this.#cron = this.src.schedule
      ? cron.createTask(this.src.schedule, () => undefined, { timezone: 'UTC' })
      : undefined;
    this.#watch?.abort();
    this.#watch = undefined;
    const watch = this.#opts.watch;
    if (!watch) return;
    const ctl = new AbortController();
    const onChange = () => {
      this.#pendingTrigger = true;
      this.#wake?.('trigger');
    };
    const started = watch(this.src, onChange, ctl.signal);
    if (!started) return;
    this.#watch = ctl;
    started.catch((thrown: unknown) => {
      const err = coerceError(thrown);
      this.#log.warn(
        { event: 'source.watch_failed', err: { code: errorCode(err), message: err.message } },
        'change notifications failed; polling on schedule only',
      );
    });
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  #jitterMs(intervalMs: number): number {
    return Math.floor((this.#opts.random ?? Math.random)() * Math.min(MAX_JITTER_MS, intervalMs / 10));
  }

  /** Time until the next scheduled cycle, measured from now. */
  #nextDelayMs(): number {
    const intervalMs = nominalIntervalMs(this.src);
    const jitter = this.#jitterMs(intervalMs);
    if (this.#cron) {
      const next = this.#cron.getNextRuns(1)[0];
      if (next) return Math.max(0, next.getTime() - this.#now()) + jitter;
    }
    if (this.#lastStartMs === undefined) return jitter;
    // Interval from the previous start; a cycle longer than the interval is followed at once.
    return Math.max(0, this.#lastStartMs + intervalMs - this.#now()) + jitter;
  }

  async #run(): Promise<void> {
    // The first cycle runs at start (after a jitter), whatever the schedule: a restart catches up.
    let delayMs = Math.min(MAX_START_JITTER_MS, this.#jitterMs(nominalIntervalMs(this.src)));
    let pausedWait = false;
    while (!this.#stop.signal.aborted) {
      const why = await this.#wait(delayMs, pausedWait);
      if (this.#stop.signal.aborted) return;
      if (why === 'replace') {
        // New settings (a reload may have fixed a password): a paused source tries again soon.
        this.#replaced = false;
        this.#pauses = 0;
        pausedWait = false;
        delayMs = this.#lastStartMs === undefined ? 0 : this.#nextDelayMs();
        continue;
      }
      this.#pendingTrigger = false;
      this.busy = true;
      this.#lastStartMs = this.#now();
      let outcome: CycleOutcome = { paused: false };
      try {
        outcome = await this.#opts.runCycle(this.src);
      } catch (thrown) {
        const err = coerceError(thrown);
        if (!this.#stop.signal.aborted)
          this.#log.error(
            { event: 'cycle.crashed', err: { code: errorCode(err), message: err.message } },
            `cycle failed: ${err.message}`,
          );
      } finally {
        this.busy = false;
      }
      if (this.#replaced) {
        this.#replaced = false;
        this.#pauses = 0;
      }
      if (outcome.paused) {
        this.#pauses++;
        delayMs = pauseBackoffMs(nominalIntervalMs(this.src), this.#pauses);
        pausedWait = true;
        this.#log.warn(
          { event: 'source.backoff', attempt: this.#pauses, delayMs },
          `source unusable; next attempt in ${Math.round(delayMs / 1000)} s`,
        );
      } else {
        if (this.#pauses > 0) this.#log.info({ event: 'source.resumed' }, 'source usable again');
        this.#pauses = 0;
        pausedWait = false;
        delayMs = outcome.more ? 0 : this.#pendingTrigger ? WATCH_DEBOUNCE_MS : this.#nextDelayMs();
      }
    }
  }

  /**
   * Wait `delayMs`, or less when a change notification comes (not while paused). Resolves with
   * what ended the wait.
   */
  #wait(delayMs: number, paused: boolean): Promise<'timer' | 'trigger' | 'replace' | 'stop'> {
    return new Promise((resolve) => {
      const deadlineMs = this.#now() + delayMs;
      let firstTriggerMs: number | undefined;
      let timer = setTimeout(() => finish('timer'), delayMs);
      const finish = (why: 'timer' | 'trigger' | 'replace' | 'stop') => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve(why);
      };
      this.#wake = (why) => {
        if (why !== 'trigger') return finish(why);
        if (paused) return;
        // Debounce a burst of changes, but a steady stream of them still gets a cycle, and
        // nothing waits past its scheduled time.
        const now = this.#now();
        firstTriggerMs ??= now;
        const latest = Math.min(deadlineMs, firstTriggerMs + 8 * WATCH_DEBOUNCE_MS);
        clearTimeout(timer);
        timer = setTimeout(() => finish('trigger'), Math.max(0, Math.min(WATCH_DEBOUNCE_MS, latest - now)));
      };
      if (this.#pendingTrigger && !paused) this.#wake('trigger');
    });
  }
}
