import { WriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import { TransientError } from '../../errors.js';
import { keepChannelWindow } from './channel-window.js';

/**
 * Pipelined SFTP reads into a stream, as ssh2's fastGet does into a file: many READ requests in
 * flight hide the round trip that a single outstanding read pays per chunk (about 26 MB/s over
 * loopback with one read, an order of magnitude more with 64). Chunks are written to the
 * writable strictly in file order, so whatever reached it before a failure is a correct prefix.
 */

/** Settings of one pipelined download. */
export interface PipelinedReadOptions {
  offsetBytes: number;
  signal: AbortSignal;
  onBytes?: ((n: number) => void) | undefined;
  /** Bytes per READ request; capped by what the server accepts. */
  chunkBytes: number;
  /** READ requests in flight plus chunks received but not yet written. */
  maxInFlight: number;
  /** Fail when the server sends nothing for this long while reads are outstanding. */
  idleTimeoutMs: number;
  /** Called on an inactivity timeout: the connection is unusable and must be destroyed. */
  onStalled(): void;
  /** False once the connection died: ssh2 silently drops requests sent on a closed channel. */
  isAlive(): boolean;
  /** Turns an ssh2 error into ours. */
  classify(err: unknown): Error;
  /** Names the file in our own errors. */
  describe: string;
}

/** ssh2 learns the server's READ size limit (OpenSSH's limits@openssh.com) but keeps it private. */
function serverMaxReadBytes(sftp: SFTPWrapper): number {
  const limit = (sftp as unknown as { _maxReadLen?: unknown })._maxReadLen;
  return typeof limit === 'number' && limit > 0 ? limit : 32 * 1024;
}

function call<T>(fn: (cb: (err: Error | undefined | null, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    fn((err, value) => (err ? reject(err) : resolve(value)));
  });
}

/** Races an SFTP request against the idle timeout and the abort signal. */
function bounded<T>(opts: PipelinedReadOptions, request: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      opts.onStalled();
      reject(new TransientError('POLLER_SFTP_TIMEOUT', `${opts.describe}: no reply from the server; will retry`));
    }, opts.idleTimeoutMs);
    const onAbort = (): void => {
      cleanup();
      reject(opts.signal.reason);
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', onAbort);
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    request.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (e: unknown) => {
        cleanup();
        reject(opts.classify(e));
      },
    );
  });
}

/**
 * Downloads `remotePath` from `offsetBytes` to its size at open time into `to`. Resolves after
 * the writable has called back for the last chunk; `to` is not ended (the caller owns it).
 */
export async function pipelinedRead(
  sftp: SFTPWrapper,
  remotePath: string,
  to: Writable,
  opts: PipelinedReadOptions,
): Promise<void> {
  opts.signal.throwIfAborted();
  if (!opts.isAlive()) throw opts.classify(new Error('connection closed'));
  const opening = call<Buffer>((cb) => sftp.open(remotePath, 'r', cb));
  let handle: Buffer;
  try {
    handle = await bounded(opts, opening);
  } catch (err) {
    // Aborted or timed out while the OPEN was under way: close the handle if it still arrives.
    opening.then(
      (late) => sftp.close(late, () => {}),
      () => {},
    );
    throw err;
  }
  let closeHandle = true;
  try {
    let sizeBytes: number;
    try {
      sizeBytes = (
        await bounded(
          opts,
          call<{ size: number }>((cb) => sftp.fstat(handle, cb)),
        )
      ).size;
    } catch (err) {
      // Some servers have no FSTAT; STAT on the path answers the same question.
      if (opts.signal.aborted || (err as { code?: unknown }).code === 'POLLER_SFTP_TIMEOUT') throw err;
      sizeBytes = (
        await bounded(
          opts,
          call<{ size: number }>((cb) => sftp.stat(remotePath, cb)),
        )
      ).size;
    }
    if (opts.offsetBytes > sizeBytes) {
      throw new TransientError(
        'POLLER_SFTP_OFFSET_PAST_END',
        `${opts.describe}: resume offset ${opts.offsetBytes} is past the remote size ${sizeBytes} (file replaced?); download it again from 0`,
      );
    }
    await pump(sftp, handle, sizeBytes, to, opts);
  } catch (err) {
    closeHandle = opts.isAlive();
    throw err;
  } finally {
    // Fire and forget: the server answers outstanding READs before the CLOSE, and waiting
    // here would only delay the caller; a dead connection fails it harmlessly.
    if (closeHandle) sftp.close(handle, () => {});
  }
}

function pump(sftp: SFTPWrapper, handle: Buffer, sizeBytes: number, to: Writable, opts: PipelinedReadOptions) {
  return new Promise<void>((resolve, reject) => {
    new ReadPump(sftp, handle, sizeBytes, to, opts, resolve, reject).start();
  });
}

/**
 * One pipelined download under way: READs are issued up to the in-flight bound (`fill`),
 * answers are kept until they are next in file order (`onRead`) and written in order
 * (`flush`); the first failure (`fail`) stops new READs and waits for the writes already handed
 * to the stream, so the caller sees the whole prefix.
 */
class ReadPump {
  #chunkBytes: number;
  readonly #windowBytes: number;
  /** Chunk buffers back from the writable, reused for the next READs (fs streams only). */
  readonly #spare: Buffer[] | undefined;
  #nextReadPos: number;
  #nextWritePos: number;
  readonly #received = new Map<number, Buffer>();
  #inFlight = 0;
  #writesPending = 0;
  #waitingForDrain = false;
  #settled = false;
  #failure: unknown;
  #lastActivityMs = Date.now();
  #idleCheck: ReturnType<typeof setInterval> | undefined;

  readonly sftp: SFTPWrapper;
  readonly handle: Buffer;
  readonly sizeBytes: number;
  readonly to: Writable;
  readonly opts: PipelinedReadOptions;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;

  constructor(
    sftp: SFTPWrapper,
    handle: Buffer,
    sizeBytes: number,
    to: Writable,
    opts: PipelinedReadOptions,
    resolve: () => void,
    reject: (err: unknown) => void,
  ) {
    this.sftp = sftp;
    this.handle = handle;
    this.sizeBytes = sizeBytes;
    this.to = to;
    this.opts = opts;
    this.resolve = resolve;
    this.reject = reject;
    this.#chunkBytes = Math.max(1, Math.min(opts.chunkBytes, serverMaxReadBytes(sftp)));
    this.#windowBytes = this.#chunkBytes * opts.maxInFlight;
    // A file stream is done with a chunk once its write called back; another writable may keep it.
    this.#spare = to instanceof WriteStream ? [] : undefined;
    this.#nextReadPos = opts.offsetBytes;
    this.#nextWritePos = opts.offsetBytes;
  }

  readonly #onAbort = (): void => this.fail(this.opts.signal.reason);
  readonly #onWritableError = (err: unknown): void => this.fail(err);
  readonly #onWritableClose = (): void =>
    this.fail(new Error(`${this.opts.describe}: the destination stream closed early`));
  readonly #onDrain = (): void => {
    this.#waitingForDrain = false;
    this.#lastActivityMs = Date.now();
    this.fill();
  };

  start(): void {
    const { opts } = this;
    this.#idleCheck = setInterval(() => this.checkIdle(), Math.max(50, Math.min(1000, opts.idleTimeoutMs / 4)));
    opts.signal.addEventListener('abort', this.#onAbort, { once: true });
    this.to.on('error', this.#onWritableError);
    this.to.on('close', this.#onWritableClose);
    keepChannelWindow(this.sftp, this.#windowBytes);
    this.fill();
  }

  checkIdle(): void {
    if (this.#inFlight > 0 && Date.now() - this.#lastActivityMs >= this.opts.idleTimeoutMs) {
      this.opts.onStalled();
      this.fail(
        new TransientError('POLLER_SFTP_TIMEOUT', `${this.opts.describe}: the server stopped sending data; will retry`),
      );
    }
  }

  cleanup(): void {
    clearInterval(this.#idleCheck);
    this.opts.signal.removeEventListener('abort', this.#onAbort);
    this.to.removeListener('drain', this.#onDrain);
    this.#received.clear();
    this.#spare?.splice(0);
  }

  fail(err: unknown): void {
    if (this.#settled || this.#failure !== undefined) return;
    this.#failure = err;
    this.cleanup();
    if (this.#writesPending === 0) this.finish();
  }

  finish(): void {
    if (this.#settled) return;
    this.#settled = true;
    // Listened to until the end: a write still pending after a failure may yet emit 'error'.
    this.to.removeListener('error', this.#onWritableError);
    this.to.removeListener('close', this.#onWritableClose);
    if (this.#failure !== undefined) this.reject(this.#failure);
    else {
      this.cleanup();
      this.resolve();
    }
  }

  maybeDone(): void {
    if (this.#failure !== undefined) {
      if (this.#writesPending === 0) this.finish();
    } else if (this.#nextWritePos >= this.sizeBytes && this.#writesPending === 0 && this.#inFlight === 0) this.finish();
  }

  /** A buffer for one READ: a spare one of the chunk size when there is one. */
  take(len: number): Buffer {
    const spare = len === this.#chunkBytes ? this.#spare?.pop() : undefined;
    return spare ?? Buffer.allocUnsafe(len);
  }

  issue(pos: number, len: number): void {
    if (!this.opts.isAlive()) {
      this.fail(this.opts.classify(new Error('connection closed')));
      return;
    }
    const buf = this.take(len);
    this.#inFlight += 1;
    this.sftp.read(this.handle, buf, 0, len, pos, (err: Error | undefined, nb: number) =>
      this.onRead(buf, pos, len, err, nb),
    );
  }

  onRead(buf: Buffer, pos: number, len: number, err: Error | undefined, nb: number): void {
    this.#inFlight -= 1;
    this.#lastActivityMs = Date.now();
    keepChannelWindow(this.sftp, this.#windowBytes);
    if (this.#failure !== undefined || this.#settled) return;
    if (err) {
      this.fail(this.opts.classify(err));
      return;
    }
    if (!nb) {
      this.fail(
        new TransientError(
          'POLLER_SFTP_FILE_SHRANK',
          `${this.opts.describe}: file ended at ${pos} bytes, before its size ${this.sizeBytes} at open; will retry`,
        ),
      );
      return;
    }
    this.#received.set(pos, nb === len ? buf : buf.subarray(0, nb));
    if (nb < len) {
      // A short read is legal SFTP: ask again for the rest, and ask for no more than this
      // server serves from now on (servers that cap reads below what ssh2 assumes).
      this.#chunkBytes = Math.min(this.#chunkBytes, nb);
      this.issue(pos + nb, len - nb);
    }
    this.flush();
    this.fill();
  }

  /** Writes every chunk that is next in file order. */
  flush(): void {
    const received = this.#received;
    for (let chunk = received.get(this.#nextWritePos); chunk !== undefined; chunk = received.get(this.#nextWritePos)) {
      received.delete(this.#nextWritePos);
      this.#nextWritePos += chunk.length;
      this.write(chunk);
    }
  }

  write(chunk: Buffer): void {
    const n = chunk.length;
    this.#writesPending += 1;
    const ok = this.to.write(chunk, (err) => {
      this.#writesPending -= 1;
      if (err) this.fail(err);
      else if (this.#failure === undefined) {
        this.opts.onBytes?.(n);
        if (n === this.#chunkBytes && this.#spare && this.#spare.length < this.opts.maxInFlight)
          this.#spare.push(chunk);
      }
      this.maybeDone();
    });
    if (!ok && !this.#waitingForDrain) {
      this.#waitingForDrain = true;
      this.to.once('drain', this.#onDrain);
    }
  }

  /** Issues READs up to the in-flight bound (answers waiting to be written count too). */
  fill(): void {
    while (
      this.#failure === undefined &&
      !this.#waitingForDrain &&
      this.#nextReadPos < this.sizeBytes &&
      this.#inFlight + this.#received.size < this.opts.maxInFlight
    ) {
      const len = Math.min(this.#chunkBytes, this.sizeBytes - this.#nextReadPos);
      this.issue(this.#nextReadPos, len);
      this.#nextReadPos += len;
    }
    this.maybeDone();
  }
}
