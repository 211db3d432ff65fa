/**
 * A sink sends messages to one broker or endpoint. `publish` resolves only on the broker's
 * acknowledgement (MQTT PUBACK, JetStream PubAck, AMQP publisher confirm, HTTP 2xx, fsync for a
 * file); the dispatcher marks an event sent only then. A sink never retries by itself.
 */
import { TransientError } from '../../errors.js';
import type { SinkMessage } from '../payload.js';

export interface PublishAck {
  /** The broker already had this id (JetStream dedupe): a re-send after a crash. */
  readonly duplicate?: boolean;
}

export interface Sink {
  /** Connect when not connected; a no-op otherwise. */
  open(): Promise<void>;
  publish(message: SinkMessage): Promise<PublishAck>;
  /** Everything published so far is durable (a file sink's fsync); default nothing to do. */
  flush?(): Promise<void>;
  /** Drop the connection (after a failure, or at shutdown); the next `open` reconnects. */
  close(): Promise<void>;
}

/** Rejects with a retryable timeout when `work` has not settled within `ms`. */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new TransientError('POLLER_EVENTS_TIMEOUT', `${what}: no acknowledgement within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A failure of the connection that every pending publish shares: they all reject with it. */
export class Breaker {
  #reject: ((err: Error) => void) | undefined;
  #promise: Promise<never>;
  constructor() {
    this.#promise = this.#arm();
  }
  #arm(): Promise<never> {
    const p = new Promise<never>((_resolve, reject) => {
      this.#reject = reject;
    });
    p.catch(() => undefined);
    return p;
  }
  get promise(): Promise<never> {
    return this.#promise;
  }
  trip(err: Error): void {
    this.#reject?.(err);
  }
  reset(): void {
    this.#promise = this.#arm();
  }
}

export function publishFailed(sink: string, cause: unknown): TransientError {
  const text = cause instanceof Error ? cause.message : String(cause);
  return new TransientError('POLLER_EVENTS_PUBLISH_FAILED', `event sink ${sink}: ${text}`, { cause });
}
