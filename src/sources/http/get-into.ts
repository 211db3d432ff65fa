/**
 * A GET whose body goes straight into the caller's stream, through undici's dispatcher API: no
 * body Readable, no stream pipeline (Node 20's builds an AbortController and a DOMException per
 * call) and no forwarding Writable per file, so a small file costs one handler object and its
 * chunks. The reply is checked before the first byte is written; the caller's stream is left
 * open and is never handed a byte of an error page.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { markDestination } from './client.js';

/** Status and headers of a reply, as the checks read them. */
export interface ReplyHead {
  statusCode: number;
  headers: IncomingHttpHeaders;
}

export interface GetIntoOptions {
  path: string;
  headers: Record<string, string>;
  signal: AbortSignal;
  /**
   * Judges the reply before its body: returns how many bytes at the body's start to skip
   * (already in the partial), or throws to refuse it (the connection is then dropped).
   */
  check(head: ReplyHead): number;
  onBytes?: ((n: number) => void) | undefined;
}

/** Resolves with the reply's head and the body bytes the stream accepted (skipped ones excluded). */
export function getInto(pool: Dispatcher, to: Writable, opts: GetIntoOptions): Promise<ReplyHead & { bytes: number }> {
  return new Promise((resolve, reject) => {
    opts.signal.throwIfAborted();
    new BodyInto(to, opts, resolve, reject).dispatch(pool);
  });
}

/** The dispatch handler of one GET: writes in arrival order, pausing the socket on backpressure. */
class BodyInto implements Dispatcher.DispatchHandler {
  readonly #to: Writable;
  readonly #opts: GetIntoOptions;
  readonly #resolve: (r: ReplyHead & { bytes: number }) => void;
  readonly #reject: (err: unknown) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #head: ReplyHead | undefined;
  #skip = 0;
  #bytes = 0;
  #pending = 0;
  #ended = false;
  #settled = false;
  #waitingForDrain = false;
  #destinationError: Error | undefined;

  constructor(
    to: Writable,
    opts: GetIntoOptions,
    resolve: (r: ReplyHead & { bytes: number }) => void,
    reject: (err: unknown) => void,
  ) {
    this.#to = to;
    this.#opts = opts;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  readonly #onAbort = (): void => this.#controller?.abort(this.#opts.signal.reason);
  readonly #onDrain = (): void => {
    this.#waitingForDrain = false;
    this.#controller?.resume();
  };
  readonly #onToError = (err: Error): void => this.#destinationFailed(err);
  readonly #onToClose = (): void => {
    if (!this.#settled) this.#destinationFailed(new Error('destination stream closed before the download finished'));
  };

  dispatch(pool: Dispatcher): void {
    this.#opts.signal.addEventListener('abort', this.#onAbort, { once: true });
    this.#to.on('error', this.#onToError);
    this.#to.on('close', this.#onToClose);
    pool.dispatch({ method: 'GET', path: this.#opts.path, headers: this.#opts.headers }, this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#opts.signal.aborted) controller.abort(this.#opts.signal.reason);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.#head = { statusCode, headers };
    try {
      this.#skip = this.#opts.check(this.#head);
    } catch (err) {
      controller.abort(err as Error);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled || this.#destinationError) return;
    let data = chunk;
    if (this.#skip > 0) {
      // The first bytes of a whole-file reply to a resume are already in the partial.
      if (this.#skip >= data.length) {
        this.#skip -= data.length;
        return;
      }
      data = data.subarray(this.#skip);
      this.#skip = 0;
    }
    const to = this.#to;
    if (to.destroyed || to.writableEnded) {
      this.#destinationFailed(new Error('destination stream closed before the download finished'));
      return;
    }
    const n = data.length;
    this.#pending++;
    const ok = to.write(data, (err) => {
      this.#pending--;
      if (err) this.#destinationFailed(err);
      else {
        this.#bytes += n;
        this.#opts.onBytes?.(n);
      }
      this.#maybeDone();
    });
    if (!ok && !this.#waitingForDrain) {
      this.#waitingForDrain = true;
      controller.pause();
      to.once('drain', this.#onDrain);
    }
  }

  onResponseEnd(): void {
    this.#ended = true;
    this.#maybeDone();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    // A destination failure aborted the request: that error is the one to report.
    this.#settle(this.#destinationError !== undefined ? markDestination(this.#destinationError) : err);
  }

  #destinationFailed(err: Error): void {
    if (this.#destinationError !== undefined) return;
    this.#destinationError = err;
    if (this.#ended) this.#maybeDone();
    else this.#controller?.abort(err);
  }

  #maybeDone(): void {
    if (!this.#ended || this.#pending > 0) return;
    if (this.#destinationError !== undefined) this.#settle(markDestination(this.#destinationError));
    else this.#settle(undefined);
  }

  #settle(err: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#opts.signal.removeEventListener('abort', this.#onAbort);
    this.#to.removeListener('error', this.#onToError);
    this.#to.removeListener('close', this.#onToClose);
    this.#to.removeListener('drain', this.#onDrain);
    if (err !== undefined) this.#reject(err);
    else this.#resolve({ ...(this.#head as ReplyHead), bytes: this.#bytes });
  }
}
