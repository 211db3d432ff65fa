import type { Writable } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import { TransientError } from '../../errors.js';

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
  let chunkBytes = Math.max(1, Math.min(opts.chunkBytes, serverMaxReadBytes(sftp)));
  return new Promise<void>((resolve, reject) => {
    let nextReadPos = opts.offsetBytes;
    let nextWritePos = opts.offsetBytes;
    const received = new Map<number, Buffer>();
    let inFlight = 0;
    let writesPending = 0;
    let waitingForDrain = false;
    let settled = false;
    let failure: unknown;
    let lastActivityMs = Date.now();

    const idleCheck = setInterval(
      () => {
        if (inFlight > 0 && Date.now() - lastActivityMs >= opts.idleTimeoutMs) {
          opts.onStalled();
          fail(
            new TransientError('POLLER_SFTP_TIMEOUT', `${opts.describe}: the server stopped sending data; will retry`),
          );
        }
      },
      Math.max(50, Math.min(1000, opts.idleTimeoutMs / 4)),
    );

    const onAbort = (): void => fail(opts.signal.reason);
    const onWritableError = (err: unknown): void => fail(err);
    const onWritableClose = (): void => fail(new Error(`${opts.describe}: the destination stream closed early`));
    const onDrain = (): void => {
      waitingForDrain = false;
      lastActivityMs = Date.now();
      fill();
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    to.on('error', onWritableError);
    to.on('close', onWritableClose);

    function cleanup(): void {
      clearInterval(idleCheck);
      opts.signal.removeEventListener('abort', onAbort);
      to.removeListener('drain', onDrain);
      received.clear();
    }

    function fail(err: unknown): void {
      if (settled || failure !== undefined) return;
      failure = err;
      cleanup();
      // Let the writes already handed to the stream land, so the caller sees the whole prefix.
      if (writesPending === 0) finish();
    }

    function finish(): void {
      if (settled) return;
      settled = true;
      // Listened to until the end: a write still pending after a failure may yet emit 'error'.
      to.removeListener('error', onWritableError);
      to.removeListener('close', onWritableClose);
      if (failure !== undefined) {
        reject(failure);
      } else {
        cleanup();
        resolve();
      }
    }

    function maybeDone(): void {
      if (failure !== undefined) {
        if (writesPending === 0) finish();
      } else if (nextWritePos >= sizeBytes && writesPending === 0 && inFlight === 0) finish();
    }

    function issue(pos: number, len: number): void {
      if (!opts.isAlive()) {
        fail(opts.classify(new Error('connection closed')));
        return;
      }
      const buf = Buffer.allocUnsafe(len);
      inFlight += 1;
      sftp.read(handle, buf, 0, len, pos, (err: Error | undefined, nb: number) => {
        inFlight -= 1;
        lastActivityMs = Date.now();
        if (failure !== undefined || settled) return;
        if (err) return fail(opts.classify(err));
        if (!nb) {
          return fail(
            new TransientError(
              'POLLER_SFTP_FILE_SHRANK',
              `${opts.describe}: file ended at ${pos} bytes, before its size ${sizeBytes} at open; will retry`,
            ),
          );
        }
        received.set(pos, nb === len ? buf : buf.subarray(0, nb));
        if (nb < len) {
          // A short read is legal SFTP: ask again for the rest, and ask for no more than this
          // server serves from now on (servers that cap reads below what ssh2 assumes).
          chunkBytes = Math.min(chunkBytes, nb);
          issue(pos + nb, len - nb);
        }
        flush();
        fill();
      });
    }

    function flush(): void {
      for (let chunk = received.get(nextWritePos); chunk !== undefined; chunk = received.get(nextWritePos)) {
        received.delete(nextWritePos);
        nextWritePos += chunk.length;
        const n = chunk.length;
        writesPending += 1;
        const ok = to.write(chunk, (err) => {
          writesPending -= 1;
          if (err) fail(err);
          else if (failure === undefined) opts.onBytes?.(n);
          maybeDone();
        });
        if (!ok && !waitingForDrain) {
          waitingForDrain = true;
          to.once('drain', onDrain);
        }
      }
    }

    function fill(): void {
      while (
        failure === undefined &&
        !waitingForDrain &&
        nextReadPos < sizeBytes &&
        inFlight + received.size < opts.maxInFlight
      ) {
        const len = Math.min(chunkBytes, sizeBytes - nextReadPos);
        issue(nextReadPos, len);
        nextReadPos += len;
      }
      maybeDone();
    }

    fill();
  });
}
