/**
 * A Writable that forwards into the caller's stream without ending it, so that a protocol client
 * (basic-ftp, an HTTP body) can be piped into a landing file the caller still fsyncs and closes.
 */
import { Writable } from 'node:stream';

/**
 * Hands each chunk to the caller's stream, honouring its backpressure, but never ends it: basic-ftp
 * ends the stream it is given, and the caller still has to fsync and close. Finishes only when
 * every write callback of the destination has run, so "resolved" means "all bytes accepted".
 */
export class ForwardingWritable extends Writable {
  readonly #to: Writable;
  readonly #onBytes: ((n: number) => void) | undefined;
  readonly #onToError: (err: Error) => void;
  #pending = 0;
  #whenSettled: (() => void) | undefined;
  destinationError: Error | undefined;

  constructor(to: Writable, onBytes: ((n: number) => void) | undefined) {
    super();
    this.#to = to;
    this.#onBytes = onBytes;
    // Catch the destination's 'error' while we write to it, so a full disk is reported, not thrown.
    this.#onToError = (err) => {
      this.destinationError ??= err;
    };
    to.on('error', this.#onToError);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.destinationError !== undefined) {
      callback(this.destinationError);
      return;
    }
    if (this.#to.destroyed || this.#to.writableEnded) {
      this.destinationError = new Error('destination stream closed before the download finished');
      callback(this.destinationError);
      return;
    }
    this.#pending++;
    const accepted = this.#to.write(chunk, (err) => {
      this.#pending--;
      if (err) this.destinationError ??= err;
      else this.#onBytes?.(chunk.length);
      if (this.#pending === 0) this.#whenSettled?.();
    });
    if (accepted || this.destinationError !== undefined) {
      callback(this.destinationError);
      return;
    }
    // Wait for room, or for the destination to fail or close (then no 'drain' will come).
    const to = this.#to;
    const settle = (): void => {
      to.removeListener('drain', settle);
      to.removeListener('error', settle);
      to.removeListener('close', settle);
      if (to.destroyed && this.destinationError === undefined) {
        this.destinationError = new Error('destination stream closed before the download finished');
      }
      callback(this.destinationError);
    };
    to.once('drain', settle);
    to.once('error', settle);
    to.once('close', settle);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#pending > 0 && this.#to.destroyed) {
      this.destinationError ??= new Error('destination stream closed before the download finished');
    }
    if (this.#pending === 0 || this.#to.destroyed) {
      callback(this.destinationError);
      return;
    }
    this.#whenSettled = () => callback(this.destinationError);
  }

  // basic-ftp ends its destination once more after the pipeline has ended it; Node would build an
  // ERR_STREAM_ALREADY_FINISHED error, stack trace and all, per file only to drop it.
  override end(cb?: () => void): this;
  override end(chunk: unknown, cb?: () => void): this;
  override end(chunk: unknown, encoding: BufferEncoding, cb?: () => void): this;
  override end(...args: unknown[]): this {
    if (args.length === 0 && this.writableEnded) return this;
    return (super.end as (...a: unknown[]) => this).apply(this, args);
  }

  detach(): void {
    this.#to.removeListener('error', this.#onToError);
  }
}
