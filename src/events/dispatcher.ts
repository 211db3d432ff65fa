/**
 * One dispatcher per sink: reads the sink's pending outbox rows in order, sends them in
 * batches with up to `inFlight` unacknowledged at once, and marks a row sent only after the
 * broker acknowledged it. A failure stops the batch, the acknowledged rows are marked, and the
 * rest is sent again (same event ids) after a backoff: at-least-once, never lost. Ingest never
 * waits for it: the engine only writes rows; this loop is the only reader.
 */
import type { Logger } from 'pino';
import { errorCode } from '../errors.js';
import type { EventOutbox } from '../ledger/ledger.js';
import { type FormatContext, formatEvent, isUnsendable, type SinkMessage } from './payload.js';
import type { Sink } from './sinks/sink.js';

export interface DispatcherStats {
  readonly sink: string;
  published: number;
  failed: number;
  /** Re-sends the broker recognised (JetStream duplicate): each was acknowledged before a crash. */
  duplicates: number;
  /** Events that cannot be sent as they are (over the message size limit); logged, then skipped. */
  rejected: number;
  /** Pending rows and the age of the oldest, as of the last look at the outbox. */
  pending: number;
  oldestPendingMs: number | null;
  connected: boolean;
  lastError: string | null;
}

export interface DispatcherOptions {
  readonly name: string;
  readonly sink: Sink;
  /** The outbox role of the ledger: pending events, their acks, the backlog. */
  readonly ledger: EventOutbox;
  readonly format: FormatContext;
  readonly log: Logger;
  readonly batch: number;
  readonly inFlight: number;
  /** Backoff after a failure: doubles from `retryBaseMs` up to `retryMaxMs`. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Look for new rows this often when idle (the engine also wakes the dispatcher up). */
  readonly idleMs?: number;
  readonly onPublished?: (n: number) => void;
  readonly onFailed?: () => void;
}

export class Dispatcher {
  readonly stats: DispatcherStats;
  readonly #o: DispatcherOptions;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #failures = 0;

  constructor(opts: DispatcherOptions) {
    this.#o = opts;
    this.stats = {
      sink: opts.name,
      published: 0,
      failed: 0,
      duplicates: 0,
      rejected: 0,
      pending: 0,
      oldestPendingMs: null,
      connected: false,
      lastError: null,
    };
  }

  /** Run in the background until `stop`. */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** New rows may be there: look now instead of at the next idle tick. */
  kick(): void {
    this.#wake?.();
  }

  /**
   * End the loop (the batch under way finishes) and close the sink; with `drainUntilMs`, first send
   * what is pending until then (the daemon's last committed files), still one sender at a time.
   */
  async stop(drainUntilMs?: number): Promise<void> {
    this.#stopped = true;
    this.kick();
    await this.#loop;
    if (drainUntilMs !== undefined) await this.drain(drainUntilMs);
    await this.#o.sink.close();
  }

  /**
   * Send what is pending until nothing is left or `deadlineMs` passes (run-once at exit).
   * Returns how many rows are still pending: they go out on the next run.
   */
  async drain(deadlineMs: number): Promise<number> {
    for (;;) {
      const sentAny = await this.#pass().catch((err: unknown) => {
        this.#noteFailure(err);
        return false;
      });
      await this.#refreshBacklog();
      if (this.stats.pending === 0 || Date.now() >= deadlineMs) return this.stats.pending;
      const pause = sentAny ? 0 : Math.min(this.#backoffMs(), deadlineMs - Date.now());
      if (pause > 0) await this.#sleep(pause);
    }
  }

  async #run(): Promise<void> {
    await this.#refreshBacklog().catch(() => undefined);
    while (!this.#stopped) {
      let pause = this.#o.idleMs ?? 500;
      try {
        if (await this.#pass()) pause = 0;
        this.#failures = 0;
      } catch (err) {
        this.#noteFailure(err);
        pause = this.#backoffMs();
      }
      await this.#refreshBacklog().catch(() => undefined);
      if (pause > 0 && !this.#stopped) await this.#sleep(pause);
    }
  }

  /** One batch. True when something was sent (more may be waiting). */
  async #pass(): Promise<boolean> {
    const o = this.#o;
    const events = await o.ledger.pendingEvents(o.name, o.batch);
    if (events.length === 0) return false;
    await o.sink.open();
    this.stats.connected = true;
    const messages: SinkMessage[] = [];
    const skipped: number[] = [];
    for (const e of events) {
      const m = await formatEvent(e, o.format);
      if (isUnsendable(m)) {
        o.log.error(
          { event: 'event.rejected', sink: o.name, id: m.id, kind: e.kind, source: e.source, path: e.fact.path },
          `event ${m.id} not sent to ${o.name}: ${m.reason}`,
        );
        this.stats.rejected++;
        skipped.push(m.seq);
      } else messages.push(m);
    }
    if (skipped.length) await o.ledger.markEventsSent(o.name, skipped, Date.now());
    await this.#sendWindowed(messages);
    return true;
  }

  /** Publishes in order with at most `inFlight` unacknowledged; marks what was acknowledged, even on failure. */
  async #sendWindowed(messages: readonly SinkMessage[]): Promise<void> {
    const o = this.#o;
    const acked: number[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    for (const m of messages) {
      if (failure !== undefined) break;
      const p: Promise<void> = o.sink.publish(m).then(
        (ack) => {
          acked.push(m.seq);
          if (ack.duplicate) this.stats.duplicates++;
          crashHookAfterAck();
        },
        (err: unknown) => {
          failure ??= err;
        },
      );
      const tracked = p.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= o.inFlight) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    if (acked.length && o.sink.flush) {
      try {
        await o.sink.flush();
      } catch (err) {
        failure ??= err;
        acked.length = 0;
      }
    }
    if (acked.length) {
      await o.ledger.markEventsSent(o.name, acked, Date.now());
      this.stats.published += acked.length;
      o.onPublished?.(acked.length);
    }
    if (failure !== undefined) {
      await o.sink.close();
      throw failure;
    }
  }

  #noteFailure(err: unknown): void {
    this.#failures++;
    this.stats.failed++;
    this.stats.connected = false;
    const text = err instanceof Error ? err.message : String(err);
    this.#o.onFailed?.();
    // One line when a streak starts, then one per 10 failures: a dead broker must not flood the log.
    if (this.#failures === 1 || this.#failures % 10 === 0 || text !== this.stats.lastError)
      this.#o.log.warn(
        { event: 'sink.failed', sink: this.#o.name, code: errorCode(err), failures: this.#failures },
        `${text}; events stay in the outbox and are sent again after a backoff`,
      );
    this.stats.lastError = text;
    void this.#o.sink.close();
  }

  #backoffMs(): number {
    const base = this.#o.retryBaseMs ?? 500;
    const max = this.#o.retryMaxMs ?? 30_000;
    const exp = Math.min(max, base * 2 ** Math.min(16, Math.max(0, this.#failures - 1)));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  async #refreshBacklog(): Promise<void> {
    const stats = await this.#o.ledger.outboxStats();
    const mine = stats.find((s) => s.sink === this.#o.name);
    this.stats.pending = mine?.pending ?? 0;
    this.stats.oldestPendingMs = mine?.oldestPendingMs ?? null;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/**
 * Test hook, for the fault suite only: `POLLER_TEST_CRASH_AT=after-event-ack` kills the process
 * with SIGKILL right after the first broker acknowledgement, before the outbox row is marked sent.
 */
const crashAtAck = process.env['POLLER_TEST_CRASH_AT'] === 'after-event-ack';
function crashHookAfterAck(): void {
  if (crashAtAck) process.kill(process.pid, 'SIGKILL');
}
