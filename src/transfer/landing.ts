/**
 * Crash-safe landing: download into `.partial/<id>.part` (resuming from its size), check the
 * size against the listing, fsync, set the remote mtime, rename into place, fsync the directory.
 * A plugin only ever sees a complete file. Two ways in: `landInMemory` (a new small file, landed
 * by a writer thread in one round trip) and `landStreaming` (a large or resumed one, written as
 * it arrives); one way out, `finishLanding` (size check, fsync, digest check, rename, directory
 * fsync), which both share.
 */
import type { Hash } from 'node:crypto';
import {
  close as closeFd,
  closeSync,
  createWriteStream,
  fsync,
  futimesSync,
  mkdirSync,
  open as openFd,
  openSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { mkdir, open, readdir, rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { ChangedError, PermanentError, SourceError, TransientError } from '../errors.js';
import type { Integrity, RemoteEntry, Source } from '../sources/source.js';
import { EarlyWriteback } from './early-writeback.js';
import { LandingDigests } from './landing-digests.js';
import { landingPathFor, partialDir, partialPathFor } from './landing-path.js';
import {
  BUFFER_BYTES,
  type LandingWriteError,
  releaseBuffer,
  syncDirectory,
  takeBuffer,
  writeAndRename,
} from './landing-writer.js';

/**
 * What the landing file's write stream buffers before it pushes back on the network. Node's
 * default (16 KiB) is smaller than one socket read (64 KiB) or SFTP read (128 KiB), so every
 * chunk paused the download until its own write was done; 1 MiB lets writes batch (writev)
 * while the socket keeps reading, for a bounded 1 MiB per transfer.
 */
const WRITE_BUFFER_BYTES = 1024 * 1024;

/**
 * A new file up to this size is received into memory and landed by a writer thread in one round
 * trip (open, write, mtime, fsync, close, rename: landing-writer.ts) instead of a thread-pool
 * round trip for each, the bulk of a small file's cost. Bounded: the cycle keeps at most twice
 * the source's concurrency files in flight. Larger files, and resumed ones, stream to disk as
 * they arrive (and a kill mid-transfer leaves their partial to resume).
 */
const IN_MEMORY_MAX_BYTES = BUFFER_BYTES;

/**
 * Receives a download into a reused landing buffer (copied as it arrives, so socket chunks die
 * young), hashing as it goes. Past the expected size it only counts: a file growing on the server
 * is refetched once stable, and memory stays bounded.
 */
class MemorySink extends Writable {
  readonly data: Buffer;
  bytes = 0;
  readonly #hashes: readonly Hash[];
  readonly #expectBytes: number;
  constructor(expectBytes: number, hashes: readonly Hash[]) {
    super();
    // Sized to the file: memory follows the bytes in flight.
    this.data = takeBuffer(expectBytes);
    this.#expectBytes = expectBytes;
    this.#hashes = hashes;
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.bytes + chunk.length <= this.#expectBytes) {
      chunk.copy(this.data, this.bytes);
      for (const h of this.#hashes) h.update(chunk);
    }
    this.bytes += chunk.length;
    callback();
  }
  /** What arrived within the expected size. */
  received(): Buffer {
    return this.data.subarray(0, Math.min(this.bytes, this.#expectBytes));
  }
}

export interface LandOptions {
  landingRoot: string;
  sourceName: string;
  fileId: number;
  entry: Pick<RemoteEntry, 'path' | 'sizeBytes' | 'mtimeMs'> & { readonly etag?: string | undefined };
  signal: AbortSignal;
  onBytes?: (n: number) => void;
  /**
   * Runs the transfer itself (open, download, fsync on close) under the caller's connection
   * budget; checking, renaming and the directory fsync happen outside it, so the connection
   * serves the next file meanwhile. Default: run directly.
   */
  transferSlot?: <T>(work: () => Promise<T>) => Promise<T>;
  /** Compute the SHA-512 of the landed bytes (an event sink wants `integrity`); hashed as they stream. */
  sha512?: boolean;
  /**
   * The digest the file was announced with: computed over every byte (a resumed prefix too) and
   * compared before the rename. A mismatch removes the partial and fails the file for good.
   */
  integrity?: Integrity;
}

export interface LandResult {
  localPath: string;
  /** Bytes transferred in this call (excludes a resumed prefix). */
  bytesTransferred: number;
  resumedFromBytes: number;
  /** Base64 SHA-512 of the landed file, when asked for. */
  sha512?: string;
}

/** Size of a file, or undefined when it is missing. Sync without throwing: a missing file is the common case (~5 µs). */
function sizeOf(file: string): number | undefined {
  return statSync(file, { throwIfNoEntry: false })?.size;
}

function runDirectly<T>(work: () => Promise<T>): Promise<T> {
  return work();
}

const openFdAsync = promisify(openFd);
const fsyncAsync = promisify(fsync);
const closeAsync = promisify(closeFd);

/** Destroys a stream and waits until it has closed its descriptor (after any pending write). */
async function destroyAndWait(out: Writable & { closed: boolean }): Promise<void> {
  if (out.closed) return;
  const closed = new Promise<void>((resolve) => out.once('close', () => resolve()));
  out.destroy();
  await closed;
}

/**
 * Opens the partial file as a plain descriptor, making `.partial/` only when it is missing (one
 * syscall less per file). A descriptor, not a FileHandle: a FileHandle stream's writes are
 * promises, and a write failing after the stream closed (ENOSPC) could go unhandled.
 */
async function openPartial(partial: string, flags: 'r+' | 'w'): Promise<number> {
  try {
    return await openFdAsync(partial, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(path.dirname(partial), { recursive: true });
    return await openFdAsync(partial, flags);
  }
}

/** Opens a new partial file synchronously (a create in the page cache), making `.partial/` only when missing. */
function openPartialSync(partial: string): number {
  try {
    return openSync(partial, 'w');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(path.dirname(partial), { recursive: true });
    return openSync(partial, 'w');
  }
}

/**
 * Renames into place, making the destination directory only when it is missing. Synchronous: a
 * rename is a metadata update of microseconds, cheaper inline than a thread-pool round trip; the
 * directory's fsync (the slow part) stays asynchronous and grouped.
 */
function renameIntoPlace(partial: string, localPath: string): void {
  try {
    renameSync(partial, localPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(path.dirname(localPath), { recursive: true });
    renameSync(partial, localPath);
  }
}

/** Keeps what a failed in-memory download received as the partial, so the next attempt resumes. */
function keepPrefix(partial: string, sink: MemorySink): void {
  const prefix = sink.received();
  if (prefix.length === 0) return;
  try {
    const fd = openPartialSync(partial);
    try {
      for (let off = 0; off < prefix.length; ) off += writeSync(fd, prefix, off);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Best effort: without it the next attempt starts from byte 0.
  }
}

async function fsyncPath(p: string, flags = 'r'): Promise<void> {
  const fh = await open(p, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Directory fsyncs, grouped per directory: a rename waits for the next fsync of its directory
 * that starts after it, and every rename made meanwhile shares that one fsync. A directory with
 * no sync running is synced at once (no added latency for a lone file).
 */
const dirSyncs = new Map<string, { running?: Promise<void>; next?: Promise<void> }>();

function syncDir(dir: string): Promise<void> {
  let s = dirSyncs.get(dir);
  if (!s) {
    s = {};
    dirSyncs.set(dir, s);
  }
  const state = s;
  const start = (): Promise<void> => {
    const run = syncDirectory(dir).finally(() => {
      if (state.running === run) state.running = undefined;
      if (!state.running && !state.next) dirSyncs.delete(dir);
    });
    state.running = run;
    return run;
  };
  if (state.next) return state.next;
  if (!state.running) return start();
  // The running fsync may have begun before this rename: one more after it covers every rename
  // that joins it meanwhile.
  const next = state.running
    .catch(() => undefined)
    .then(() => {
      state.next = undefined;
      return start();
    });
  state.next = next;
  return next;
}

/**
 * True when the destination already holds this exact version: a crash between the rename and
 * the ledger commit leaves a complete file with the remote mtime we set before renaming.
 */
export async function isAlreadyLanded(
  localPath: string,
  entry: Pick<RemoteEntry, 'sizeBytes' | 'mtimeMs'>,
): Promise<boolean> {
  const st = statSync(localPath, { throwIfNoEntry: false });
  return st !== undefined && st.size === entry.sizeBytes && Math.abs(st.mtimeMs - entry.mtimeMs) < 1000;
}

/** Errno codes of a full landing filesystem (space or quota): no file of this source can land now. */
const NO_SPACE_CODES = new Set(['ENOSPC', 'EDQUOT']);

function noSpaceCode(err: unknown): string | undefined {
  // The code may sit on the error itself or on a cause a source wrapped it in.
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && NO_SPACE_CODES.has(code)) return code;
  }
  return undefined;
}

/**
 * Lands one file (see the module comment). A full landing filesystem is the source's problem,
 * not the file's: it surfaces as a SourceError (`POLLER_LANDING_NO_SPACE`) so that the cycle
 * stops fetching with one log line instead of failing every file; the partial is kept for resume.
 */
export async function landFile(source: Source, opts: LandOptions): Promise<LandResult> {
  try {
    return await landFileOnce(source, opts);
  } catch (err) {
    const code = noSpaceCode(err);
    if (code === undefined) throw err;
    throw new SourceError(
      'POLLER_LANDING_NO_SPACE',
      `landing directory ${opts.landingRoot} is full (${code}) while writing ${opts.sourceName}:${opts.entry.path}; free space there or point landing at a larger filesystem; fetching resumes on the next cycle`,
      { cause: err },
    );
  }
}

/** One landing under way: where it goes, where it resumes from, what it hashes. */
interface Landing {
  readonly source: Source;
  readonly opts: LandOptions;
  readonly localPath: string;
  readonly partial: string;
  /** Bytes of the partial this landing resumes from. */
  readonly offset: number;
  readonly digests: LandingDigests;
  /** Runs the transfer under the caller's connection budget. */
  readonly slot: <T>(work: () => Promise<T>) => Promise<T>;
  /** Bytes transferred by this call. */
  transferred: number;
}

/** Where a download left the file, for the finish. */
type Downloaded =
  /** In place: a landing writer wrote, fsynced and renamed it (its size and digest checked first). */
  | { readonly at: 'place' }
  /** In the partial, `sizeBytes` long; `synced`: fsynced with its mtime set (and hashed) by this call. */
  | { readonly at: 'partial'; readonly sizeBytes: number; readonly synced: boolean };

async function landFileOnce(source: Source, opts: LandOptions): Promise<LandResult> {
  const { entry } = opts;
  const localPath = landingPathFor(opts.landingRoot, opts.sourceName, entry.path);
  // A version keyed by ETag may share size and mtime with the one landed before it: only the
  // bytes could tell, so it is downloaded (after a crash too: one extra transfer, never stale bytes).
  if (entry.etag === undefined && (await isAlreadyLanded(localPath, entry))) return alreadyLanded(localPath, opts);
  const partial = partialPathFor(opts.landingRoot, opts.fileId, entry.sizeBytes, entry.mtimeMs);
  let offset = sizeOf(partial) ?? 0;
  if (offset > entry.sizeBytes) {
    // Longer than the version we claimed: not ours to resume.
    await rm(partial, { force: true });
    offset = 0;
  }
  const l: Landing = {
    source,
    opts,
    localPath,
    partial,
    offset,
    digests: new LandingDigests(opts.sha512 === true, opts.integrity),
    slot: opts.transferSlot ?? runDirectly,
    transferred: 0,
  };
  let downloaded: Downloaded;
  if (offset === 0 && entry.sizeBytes <= IN_MEMORY_MAX_BYTES) downloaded = await landInMemory(l);
  else if (offset < entry.sizeBytes || entry.sizeBytes === 0) downloaded = await landStreaming(l);
  // A partial an earlier run completed: nothing left to download.
  else downloaded = { at: 'partial', sizeBytes: sizeOf(partial) ?? 0, synced: false };
  return finishLanding(l, downloaded);
}

async function alreadyLanded(localPath: string, opts: LandOptions): Promise<LandResult> {
  const landed: LandResult = { localPath, bytesTransferred: 0, resumedFromBytes: opts.entry.sizeBytes };
  if (!opts.sha512) return landed;
  const digests = new LandingDigests(true, undefined);
  await digests.hashFile(localPath);
  return { ...landed, sha512: digests.sha512() as string };
}

function downloadOptionsOf(l: Landing, offsetBytes: number): Parameters<Source['download']>[2] {
  return downloadOptions(l.opts.entry, offsetBytes, l.opts.signal, (n) => {
    l.transferred += n;
    l.opts.onBytes?.(n);
  });
}

/**
 * A new small file: received into memory, then (when whole and its digest right) landed by a
 * writer thread in one round trip while the connection serves the next file. What arrived of a
 * failed or short download is kept as the partial, for the next attempt to resume.
 */
async function landInMemory(l: Landing): Promise<Downloaded> {
  const { entry, sourceName } = l.opts;
  const sink = await l.slot(async () => {
    const received = new MemorySink(entry.sizeBytes, l.digests.hashes());
    try {
      await l.source.download(entry.path, received, downloadOptionsOf(l, 0));
    } catch (err) {
      keepPrefix(l.partial, received);
      releaseBuffer(received.data);
      throw err;
    }
    return received;
  });
  if (sink.bytes !== entry.sizeBytes) {
    // Judged by the finish; a short one resumes from what arrived.
    if (sink.bytes < entry.sizeBytes) keepPrefix(l.partial, sink);
    releaseBuffer(sink.data);
    return { at: 'partial', sizeBytes: sink.bytes, synced: false };
  }
  const check = l.digests.announced();
  if (check && !check.got.equals(check.want.digest)) {
    releaseBuffer(sink.data);
    throw integrityMismatch(sourceName, entry, check.want, check.got);
  }
  try {
    // The buffer is the writer's now; it comes back for reuse.
    await writeAndRename({
      partial: l.partial,
      localPath: l.localPath,
      mtimeMs: entry.mtimeMs,
      data: sink.data,
      sizeBytes: sink.bytes,
    });
  } catch (err) {
    throw (err as LandingWriteError).stage === 'rename' ? renameFailure(err, sourceName, entry, l.localPath) : err;
  }
  return { at: 'place' };
}

/** A large or resumed file: streamed into the partial as it arrives (the prefix on disk hashed first). */
async function landStreaming(l: Landing): Promise<Downloaded> {
  if (l.offset > 0) await l.digests.hashFile(l.partial, l.offset);
  const written = await l.slot(() => streamIntoPartial(l));
  return { at: 'partial', sizeBytes: l.offset + written, synced: true };
}

/** Downloads into the partial from `offset`; resolves with the bytes written, fsynced with the remote mtime set. */
async function streamIntoPartial(l: Landing): Promise<number> {
  const { partial, offset } = l;
  const fd = await openPartial(partial, offset > 0 ? 'r+' : 'w');
  // The descriptor stays ours once the writes are done (autoClose off): the mtime is set and the
  // file fsynced through it, with no reopen and no path lookup. On a failure the stream closes it
  // itself, after any write still under way.
  const out = createWriteStream(partial, { fd, start: offset, highWaterMark: WRITE_BUFFER_BYTES, autoClose: false });
  l.digests.hashWrites(out);
  const writeback = new EarlyWriteback(fd, out, offset);
  let writeError: unknown;
  out.on('error', (err) => {
    writeError ??= err;
  });
  try {
    await l.source.download(l.opts.entry.path, out, downloadOptionsOf(l, offset));
    if (!out.writableEnded) out.end();
    await finished(out);
  } catch (err) {
    await writeback.stop();
    await destroyAndWait(out);
    // A source may report a failed local write as its own transfer error: the disk's error wins.
    throw noSpaceCode(writeError) !== undefined ? writeError : err;
  }
  // Reached only after a complete download whose writes all succeeded. A file whose fsync or close
  // failed is not known to be on disk: it must not be landed (a full disk shows up here too;
  // landFile turns it into POLLER_LANDING_NO_SPACE).
  await writeback.stop();
  const mtime = new Date(l.opts.entry.mtimeMs);
  try {
    futimesSync(fd, mtime, mtime);
    await fsyncAsync(fd);
  } catch (err) {
    await closeAsync(fd).catch(() => undefined);
    throw err;
  }
  closeSync(fd);
  return out.bytesWritten;
}

/**
 * The finish every landing shares: a partial is checked against the listed size, fsynced (when
 * an earlier run completed it), checked against the announced digest and renamed into place;
 * then the directory is fsynced, so the rename survives a crash before the ledger commit.
 */
async function finishLanding(l: Landing, d: Downloaded): Promise<LandResult> {
  const { entry, sourceName } = l.opts;
  if (d.at === 'partial') {
    await checkSize(l, d.sizeBytes);
    // A partial completed by an earlier run was never synced (nor hashed) by this one.
    if (!d.synced) {
      const mtime = new Date(entry.mtimeMs);
      await utimes(l.partial, mtime, mtime);
      await fsyncPath(l.partial, 'r+');
      await l.digests.hashFile(l.partial);
    }
    const check = l.digests.announced();
    if (check && !check.got.equals(check.want.digest)) {
      await rm(l.partial, { force: true });
      throw integrityMismatch(sourceName, entry, check.want, check.got);
    }
    try {
      renameIntoPlace(l.partial, l.localPath);
    } catch (err) {
      throw renameFailure(err, sourceName, entry, l.localPath);
    }
  }
  await syncDir(path.dirname(l.localPath)).catch(() => undefined);
  crashHookAfterRename();
  const sha512 = l.digests.sha512();
  return {
    localPath: l.localPath,
    bytesTransferred: l.transferred,
    resumedFromBytes: l.offset,
    ...(sha512 !== undefined && { sha512 }),
  };
}

/** The partial holds exactly the listed size, or the landing fails (a short one resumes; a longer one changed). */
async function checkSize(l: Landing, got: number): Promise<void> {
  const { entry, sourceName } = l.opts;
  if (got === entry.sizeBytes) return;
  if (got > entry.sizeBytes) {
    await rm(l.partial, { force: true });
    throw new ChangedError(
      'POLLER_LANDING_SIZE_GREW',
      `${sourceName}:${entry.path}: got ${got} bytes, listing said ${entry.sizeBytes}: the file changed during the download; it is fetched again once stable`,
    );
  }
  throw new TransientError(
    'POLLER_LANDING_SHORT',
    `${sourceName}:${entry.path}: transfer ended at ${got} of ${entry.sizeBytes} bytes; it resumes on the next attempt`,
  );
}

function integrityMismatch(
  sourceName: string,
  entry: LandOptions['entry'],
  want: Integrity,
  got: Buffer,
): PermanentError {
  return new PermanentError(
    'POLLER_LANDING_INTEGRITY_MISMATCH',
    `${sourceName}:${entry.path}: the ${want.method} of the downloaded bytes is ${got.toString('base64')}, the announced one ${want.digest.toString('base64')}: not landed`,
  );
}

/** A rename into place that failed: a file/directory clash is the file's permanent problem. */
function renameFailure(err: unknown, sourceName: string, entry: LandOptions['entry'], localPath: string): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'ENOTEMPTY') {
    return new PermanentError(
      'POLLER_LANDING_PATH_CONFLICT',
      `${sourceName}:${entry.path}: cannot land at ${localPath} (${code}): a file and a directory share this name`,
      { cause: err },
    );
  }
  return err;
}

function downloadOptions(
  entry: LandOptions['entry'],
  offsetBytes: number,
  signal: AbortSignal,
  onBytes: (n: number) => void,
): Parameters<Source['download']>[2] {
  return {
    offsetBytes,
    signal,
    expect: {
      sizeBytes: entry.sizeBytes,
      mtimeMs: entry.mtimeMs,
      ...('mtimePrecision' in entry && { mtimePrecision: (entry as RemoteEntry).mtimePrecision }),
      ...(entry.etag !== undefined && { etag: entry.etag }),
    },
    onBytes,
  };
}

/**
 * At start-up: remove partial files no ledger row can resume: their row is gone or finished, or
 * it moved to another version while settling (the version is in the partial's name).
 */
export async function sweepPartials(
  landingRoot: string,
  live: readonly { id: number; sizeBytes: number; mtimeMs: number }[],
): Promise<number> {
  const keep = new Set(live.map((v) => path.basename(partialPathFor(landingRoot, v.id, v.sizeBytes, v.mtimeMs))));
  let removed = 0;
  for (const name of await readdir(partialDir(landingRoot)).catch(() => [] as string[])) {
    if (!keep.has(name)) {
      await rm(path.join(partialDir(landingRoot), name), { force: true });
      removed++;
    }
  }
  return removed;
}

/**
 * Test hook, for the fault suite only: `POLLER_TEST_CRASH_AT=after-rename[:n]` kills the process
 * with SIGKILL right after the n-th rename into place (default the first), before the ledger
 * commit, to hit that crash window on purpose. Unset in production: one string compare per file.
 */
const crashAt = /^after-rename(?::(\d+))?$/.exec(process.env['POLLER_TEST_CRASH_AT'] ?? '');
let renamesBeforeCrash = crashAt ? Number(crashAt[1] ?? 1) : 0;
function crashHookAfterRename(): void {
  if (crashAt && --renamesBeforeCrash <= 0) process.kill(process.pid, 'SIGKILL');
}
