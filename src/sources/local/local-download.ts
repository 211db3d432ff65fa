/**
 * Downloading a local file, by the SFTP source's rules: bytes from `offsetBytes` to the size at
 * open, into the caller's stream, never ending it; the destination's errors passed through as they
 * are, read errors classified.
 */
import fs from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PermanentError, TransientError } from '../../errors.js';
import { ForwardingWritable } from '../forwarding-writable.js';
import type { DownloadOptions } from '../source.js';
import { classifyLocal, type LocalContext } from './local-context.js';

/** Read size for downloads; large reads keep syscalls few on big radar volumes. */
const READ_CHUNK_BYTES = 256 * 1024;

/** The size to read up to: refuses what is not a regular file, or a resume past its end. */
async function sizeToRead(ctx: LocalContext, fh: fs.FileHandle, rel: string, offsetBytes: number): Promise<number> {
  const st = await fh.stat();
  if (!st.isFile()) {
    throw new PermanentError('POLLER_LOCAL_WRONG_TYPE', `local source "${ctx.name}": ${rel} is not a regular file`);
  }
  if (offsetBytes > st.size) {
    throw new TransientError(
      'POLLER_LOCAL_OFFSET_PAST_END',
      `local source "${ctx.name}": ${rel}: resume offset ${offsetBytes} is past the size ${st.size} (file replaced?); download it again from 0`,
    );
  }
  return st.size;
}

/** Copies bytes [start, end] of an open file into `to` with backpressure, without ending it. */
async function copyRange(
  ctx: LocalContext,
  fh: fs.FileHandle,
  rel: string,
  range: { start: number; end: number },
  to: Writable,
  { signal, onBytes }: Pick<DownloadOptions, 'signal' | 'onBytes'>,
): Promise<void> {
  const from = fh.createReadStream({ ...range, autoClose: false, highWaterMark: READ_CHUNK_BYTES });
  const sink = new ForwardingWritable(to, onBytes);
  try {
    await pipeline(from, sink, { signal });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    // The destination's errors are the caller's own; only read errors are classified here.
    if (sink.destinationError !== undefined) throw sink.destinationError;
    throw classifyLocal(ctx, err, rel);
  } finally {
    sink.detach();
  }
  if (sink.destinationError !== undefined) throw sink.destinationError;
  signal.throwIfAborted();
}

/** Downloads the file `rel` (local path `full`) into `to`. */
export async function downloadLocalFile(
  ctx: LocalContext,
  full: string,
  rel: string,
  to: Writable,
  opts: DownloadOptions,
): Promise<void> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(full, 'r');
  } catch (err) {
    throw classifyLocal(ctx, err, rel);
  }
  try {
    const size = await sizeToRead(ctx, fh, rel, opts.offsetBytes);
    // Up to the size at open, as the SFTP source does: a file still growing is the settle rule's business.
    if (opts.offsetBytes < size) await copyRange(ctx, fh, rel, { start: opts.offsetBytes, end: size - 1 }, to, opts);
  } finally {
    await fh.close().catch(() => {});
  }
}
