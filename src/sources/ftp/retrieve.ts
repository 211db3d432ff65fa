/**
 * poller's own per-file download over a basic-ftp control connection: basic-ftp keeps the
 * connection, TLS, login, the command/reply machinery and its errors; the RETR itself is ours.
 * basic-ftp's `downloadTo` puts a stream pipeline (with an AbortController), a transfer resolver,
 * a watchdog and a progress tracker around each file, a few per cent of a small file's CPU. Here a
 * transfer is one `handle` task: the data socket's chunks go straight into the caller's stream
 * (pausing the socket while it is full), one timer watches for a stalled transfer, and the task
 * resolves when both the data connection has ended and the server has confirmed (226).
 */
import type { Writable } from 'node:stream';
import type { FTPContext, FTPResponse } from 'basic-ftp';
import { markLocalError } from './errors.js';

/** What the RETR needs besides the control connection. */
export interface RetrieveOptions {
  /** Absolute remote path. */
  readonly path: string;
  /** Resume from this byte (REST); 0 for the whole file. */
  readonly offsetBytes: number;
  /** Receives the bytes; never ended here (the caller fsyncs and closes it). */
  readonly to: Writable;
  /** Called with each chunk's size once the chunk was handed to `to`. */
  readonly onBytes?: ((n: number) => void) | undefined;
}

/**
 * Retrieves one file over the data connection basic-ftp's transfer strategy opened
 * (`client.prepareTransfer`, which sets `ftp.dataSocket`). Resolves once every byte was accepted
 * by `to` (its write callbacks ran) and the server confirmed the transfer. A failure of `to` comes
 * out marked as local (errors.ts), so it is not mistaken for a transfer error; any other failure
 * is basic-ftp's own (the control connection is then closed, or usable after an FTPError).
 */
export function retrieve(ftp: FTPContext, o: RetrieveOptions): Promise<FTPResponse> {
  const data = ftp.dataSocket;
  if (data === undefined) return Promise.reject(new Error('no data connection is open for the download'));
  const { to, onBytes } = o;
  let started = false;
  let dataDone = false;
  let reply: FTPResponse | undefined;
  let settled = false;
  /** Writes handed to `to` whose callbacks have not run yet. */
  let pending = 0;
  let localError: Error | undefined;
  let received = 0;
  let watched = 0;
  let watchdog: NodeJS.Timeout | undefined;
  let task: { resolve: (r: FTPResponse) => void; reject: (e: Error) => void } | undefined;

  const finish = (err?: Error): void => {
    if (settled) return;
    settled = true;
    if (watchdog !== undefined) clearTimeout(watchdog);
    data.removeListener('data', onData);
    data.removeListener('end', onEnd);
    // A failed destination keeps the listener: its 'error' event may come after this.
    if (localError === undefined) to.removeListener('error', onLocalError);
    to.removeListener('drain', onDrain);
    // The control connection watches for silence again (it was off while the data flowed).
    ftp.socket.setTimeout(ftp.timeout);
    ftp.dataSocket = undefined;
    if (err !== undefined) task?.reject(err);
    else task?.resolve(reply as FTPResponse);
  };
  const tryResolve = (): void => {
    if (dataDone && pending === 0 && reply !== undefined) finish();
  };
  const onLocalError = (err: Error): void => {
    localError ??= err;
    // The transfer cannot land: stop it; the control connection is closed with the data one.
    ftp.closeWithError(markLocalError(err));
  };
  const onWritten = (err?: Error | null): void => {
    pending--;
    if (err) {
      onLocalError(err);
      return;
    }
    if (pending === 0 && dataDone) tryResolve();
  };
  const onDrain = (): void => {
    data.resume();
  };
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    pending++;
    if (!to.write(chunk, onWritten)) {
      data.pause();
      to.once('drain', onDrain);
    }
    onBytes?.(chunk.length);
  };
  const onEnd = (): void => {
    dataDone = true;
    // From here the control connection's reply is awaited under its own timeout.
    if (started) ftp.socket.setTimeout(ftp.timeout);
    if (watchdog !== undefined) clearTimeout(watchdog);
    tryResolve();
  };
  /**
   * A stalled transfer: no byte for a whole timeout while nothing held the socket back. A full
   * destination (paused socket) is not a stall of the server's.
   */
  const watch = (): void => {
    if (settled || dataDone) return;
    if (received === watched && !data.isPaused()) {
      ftp.closeWithError(new Error('Timeout (data socket)'));
      return;
    }
    watched = received;
    watchdog = setTimeout(watch, ftp.timeout);
    watchdog.unref();
  };

  to.on('error', onLocalError);
  // Read from the start: a server may send a small file and close the data connection before
  // its 150 reply arrives on the control connection; a socket closed with nobody reading would
  // never report its end. A tunnelled data connection comes explicitly paused: resume it.
  data.on('data', onData);
  data.once('end', onEnd);
  data.resume();
  const command = o.offsetBytes > 0 ? `REST ${o.offsetBytes}` : `RETR ${o.path}`;
  return ftp.handle(command, (res, t) => {
    task = t;
    if (res instanceof Error) {
      finish(localError !== undefined ? markLocalError(localError) : res);
    } else if (res.code === 150 || res.code === 125) {
      // Only the first preliminary reply starts the transfer (some servers send two).
      if (started) return;
      started = true;
      // The data connection is watched during the transfer; the idle control one is not.
      ftp.socket.setTimeout(0);
      data.setTimeout(0);
      if (ftp.timeout > 0 && !dataDone) {
        watchdog = setTimeout(watch, ftp.timeout);
        watchdog.unref();
      }
    } else if (res.code === 350) {
      ftp.send(`RETR ${o.path}`);
    } else if (res.code >= 200 && res.code < 300) {
      reply = res;
      tryResolve();
    } else if (res.code >= 300 && res.code < 400) {
      finish(new Error(`unexpected reply to ${command}: ${res.message}`));
    }
    // Other preliminary replies (1xx) are informational.
  });
}

/**
 * The port of an EPSV reply, `229 Entering Extended Passive Mode (|||6446|)` (IBM i uses `!`),
 * read without a regular expression or an object; undefined when there is none.
 */
export function epsvPort(message: string): number | undefined {
  let at = message.indexOf('|||');
  if (at < 0) at = message.indexOf('!!!');
  if (at < 0) return undefined;
  let port = 0;
  let digits = 0;
  for (let i = at + 3; i < message.length && digits < 6; i++) {
    const c = message.charCodeAt(i) - 48;
    if (c < 0 || c > 9) break;
    port = port * 10 + c;
    digits++;
  }
  return digits > 0 && port > 0 && port < 65536 ? port : undefined;
}

/**
 * The port of a PASV reply, `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)`: the last two numbers
 * before the closing parenthesis; undefined when the reply has another shape (the caller then
 * falls back to basic-ftp's parser).
 */
export function pasvPort(message: string): number | undefined {
  const close = message.lastIndexOf(')');
  if (close < 0) return undefined;
  const c2 = message.lastIndexOf(',', close);
  const c1 = c2 > 0 ? message.lastIndexOf(',', c2 - 1) : -1;
  if (c1 < 0) return undefined;
  const p1 = Number(message.slice(c1 + 1, c2));
  const p2 = Number(message.slice(c2 + 1, close));
  if (!Number.isInteger(p1) || !Number.isInteger(p2) || p1 < 0 || p1 > 255 || p2 < 0 || p2 > 255) return undefined;
  const port = p1 * 256 + p2;
  return port > 0 ? port : undefined;
}
