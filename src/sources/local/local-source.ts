import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { NotFoundError, PermanentError, PollerError, SourceError, TransientError } from '../../errors.js';
import type {
  DownloadOptions,
  EntryType,
  ListOptions,
  RemoteEntry,
  Source,
  SourceConnectOptions,
  WatchOptions,
} from '../source.js';
import { type DirWatcher, startDirWatcher } from './dir-watcher.js';

/** A directory bigger than this is listed only this far, with a warning (memory bound). */
const MAX_LIST_ENTRIES = 1_000_000;
/** lstat calls in flight while listing: enough to hide disk latency, few enough for the libuv pool. */
const STAT_BATCH = 64;
/** Read size for downloads; large reads keep syscalls few on big radar volumes. */
const READ_CHUNK_BYTES = 256 * 1024;

function typeOf(st: Stats): EntryType | undefined {
  if (st.isSymbolicLink()) return 'link';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  return undefined;
}

function toPosix(rel: string): string {
  return rel.split(path.sep).join('/');
}

/**
 * A local directory as a source (`file:///path`; `rootPath` is the directory). Entries carry
 * lstat data (a symlink is a 'link'); mtimes are exact to the millisecond. `watch` reports new
 * and changed files through one watch per directory of the source's window (dir-watcher.ts); it
 * only triggers an early poll, the engine's periodic rescan remains the backstop. `download` follows the SFTP source's rules: bytes from
 * `offsetBytes` to the size at open, `to` never ended, its errors passed through.
 */
export function createLocalSource(opts: SourceConnectOptions): Source {
  const root = path.resolve(opts.rootPath);
  const displayUrl = pathToFileURL(root).href;
  const watchers = new Set<DirWatcher>();
  let closed = false;

  function classify(err: unknown, rel: string): PollerError {
    if (err instanceof PollerError) return err;
    const code = (err as { code?: unknown } | null)?.code;
    const what = `local source "${opts.name}": ${rel === '' ? root : rel}`;
    const cause = { cause: err };
    if (rel === '' && (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'EPERM')) {
      return new SourceError(
        'POLLER_LOCAL_ROOT_UNUSABLE',
        `${what}: the source directory cannot be read (${String(code)}); check the url path and permissions`,
        cause,
      );
    }
    switch (code) {
      case 'ENOENT':
        return new NotFoundError('POLLER_LOCAL_NOT_FOUND', `${what}: no such file or directory`, cause);
      case 'EACCES':
      case 'EPERM':
        return new PermanentError(
          'POLLER_LOCAL_PERMISSION_DENIED',
          `${what}: permission denied; let the poller's user read it or exclude it`,
          cause,
        );
      case 'ENOTDIR':
      case 'EISDIR':
        return new PermanentError('POLLER_LOCAL_WRONG_TYPE', `${what}: not the expected file type (${code})`, cause);
      default:
        return new TransientError(
          'POLLER_LOCAL_IO',
          `${what}: ${typeof code === 'string' ? code : 'I/O error'}; will retry`,
          cause,
        );
    }
  }

  function normalise(rel: string): string {
    const trimmed = toPosix(rel).replace(/^\/+|\/+$/g, '');
    return trimmed === '.' ? '' : trimmed;
  }

  /** The local path of a relative one; refuses anything that climbs out of the root. */
  function localPathOf(rel: string): string {
    const full = path.resolve(root, rel);
    if (full !== root && !full.startsWith(root.endsWith(path.sep) ? root : root + path.sep)) {
      throw new PermanentError(
        'POLLER_LOCAL_PATH_OUTSIDE_ROOT',
        `local source "${opts.name}": ${rel} points outside the source directory; it is not followed`,
      );
    }
    return full;
  }

  function assertOpen(): void {
    if (closed) throw new TransientError('POLLER_LOCAL_CLOSED', `local source "${opts.name}": source is closed`);
  }

  async function list(dir: string, { signal }: ListOptions): Promise<RemoteEntry[]> {
    assertOpen();
    signal.throwIfAborted();
    const rel = normalise(dir);
    const full = localPathOf(rel);
    const names: string[] = [];
    try {
      const handle = await fs.opendir(full);
      for await (const dirent of handle) {
        names.push(dirent.name);
        if (names.length >= MAX_LIST_ENTRIES) {
          opts.log.warn(
            { event: 'listing.truncated', source: opts.name, dir: rel, entries: names.length },
            'directory listing cut at the entry cap',
          );
          break;
        }
      }
    } catch (err) {
      throw classify(err, rel);
    }
    const entries: RemoteEntry[] = [];
    for (let i = 0; i < names.length; i += STAT_BATCH) {
      signal.throwIfAborted();
      const batch = await Promise.all(
        names.slice(i, i + STAT_BATCH).map(async (name): Promise<RemoteEntry | undefined> => {
          let st: Stats;
          try {
            st = await fs.lstat(path.join(full, name));
          } catch (err) {
            // Gone between readdir and lstat: the next listing will not show it either.
            if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
            throw classify(err, rel === '' ? name : `${rel}/${name}`);
          }
          const type = typeOf(st);
          if (type === undefined) return undefined;
          return {
            path: rel === '' ? name : `${rel}/${name}`,
            name,
            type,
            sizeBytes: st.size,
            mtimeMs: Math.round(st.mtimeMs),
            mtimePrecision: 'ms',
          };
        }),
      );
      for (const e of batch) if (e !== undefined) entries.push(e);
    }
    return entries;
  }

  async function download(
    relPath: string,
    to: Writable,
    { offsetBytes, signal, onBytes }: DownloadOptions,
  ): Promise<void> {
    assertOpen();
    signal.throwIfAborted();
    const rel = normalise(relPath);
    const full = localPathOf(rel);
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(full, 'r');
    } catch (err) {
      throw classify(err, rel);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) {
        throw new PermanentError(
          'POLLER_LOCAL_WRONG_TYPE',
          `local source "${opts.name}": ${rel} is not a regular file`,
        );
      }
      if (offsetBytes > st.size) {
        throw new TransientError(
          'POLLER_LOCAL_OFFSET_PAST_END',
          `local source "${opts.name}": ${rel}: resume offset ${offsetBytes} is past the size ${st.size} (file replaced?); download it again from 0`,
        );
      }
      if (offsetBytes === st.size) return;
      // Up to the size at open, as the SFTP source does: a file still growing is the settle rule's business.
      const stream = fh.createReadStream({
        start: offsetBytes,
        end: st.size - 1,
        autoClose: false,
        highWaterMark: READ_CHUNK_BYTES,
      });
      await copyInto(stream, to, signal, onBytes, (err) => classify(err, rel));
    } finally {
      await fh.close().catch(() => {});
    }
  }

  async function stat(relPath: string, { signal }: ListOptions): Promise<RemoteEntry | undefined> {
    assertOpen();
    signal.throwIfAborted();
    const rel = normalise(relPath);
    let st: Stats;
    try {
      st = await fs.stat(localPathOf(rel));
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
      throw classify(err, rel);
    }
    const type = typeOf(st);
    if (type === undefined) return undefined;
    return {
      path: rel,
      name: path.posix.basename(rel),
      type,
      sizeBytes: st.size,
      mtimeMs: Math.round(st.mtimeMs),
      mtimePrecision: 'ms',
    };
  }

  async function remove(relPath: string, { signal }: ListOptions): Promise<void> {
    assertOpen();
    signal.throwIfAborted();
    const rel = normalise(relPath);
    try {
      await fs.unlink(localPathOf(rel));
    } catch (err) {
      throw classify(err, rel);
    }
  }

  async function rename(from: string, to: string, { signal }: ListOptions): Promise<void> {
    assertOpen();
    signal.throwIfAborted();
    const src = normalise(from);
    const dst = localPathOf(normalise(to));
    try {
      await fs.mkdir(path.dirname(dst), { recursive: true });
      await fs.rename(localPathOf(src), dst);
    } catch (err) {
      throw classify(err, src);
    }
  }

  async function watch(onChange: (relPath: string) => void, { signal, scope }: WatchOptions): Promise<void> {
    assertOpen();
    signal.throwIfAborted();
    // Stability is the engine's settle rule, applied to every source alike: events are hints only.
    const watcher = await startDirWatcher({ root, sourceName: opts.name, log: opts.log, onChange, scope });
    if (signal.aborted || closed) {
      watcher.close();
      return;
    }
    watchers.add(watcher);
    signal.addEventListener(
      'abort',
      () => {
        watchers.delete(watcher);
        watcher.close();
      },
      { once: true },
    );
  }

  return {
    displayUrl,
    list,
    download,
    stat,
    remove,
    rename,
    watch,
    close: async () => {
      closed = true;
      for (const w of watchers) w.close();
      watchers.clear();
    },
  };
}

/**
 * Copies a readable into a writable with backpressure, without ending the writable; resolves
 * once the writable has called back for the last chunk.
 */
async function copyInto(
  from: NodeJS.ReadableStream & { destroy(): void },
  to: Writable,
  signal: AbortSignal,
  onBytes: ((n: number) => void) | undefined,
  classifyRead: (err: unknown) => Error,
): Promise<void> {
  let pending = 0;
  let writeError: unknown;
  let settleFlushed: (() => void) | undefined;
  const onAbort = (): void => from.destroy();
  // Held for the whole copy, so a failing destination stops the reads and is reported, not thrown.
  const onDestinationError = (err: unknown): void => {
    writeError ??= err;
    from.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  to.on('error', onDestinationError);

  const waitForDrain = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        to.removeListener('drain', onDrain);
        to.removeListener('error', onError);
        to.removeListener('close', onClose);
        signal.removeEventListener('abort', onAbortWait);
      };
      const onDrain = (): void => {
        cleanup();
        resolve();
      };
      const onError = (err: unknown): void => {
        cleanup();
        reject(err);
      };
      const onClose = (): void => {
        cleanup();
        reject(new Error('the destination stream closed early'));
      };
      const onAbortWait = (): void => {
        cleanup();
        reject(signal.reason);
      };
      to.on('drain', onDrain);
      to.on('error', onError);
      to.on('close', onClose);
      signal.addEventListener('abort', onAbortWait, { once: true });
    });

  try {
    try {
      for await (const chunk of from as AsyncIterable<Buffer>) {
        if (writeError !== undefined) throw writeError;
        pending += 1;
        const n = chunk.length;
        const ok = to.write(chunk, (err) => {
          pending -= 1;
          if (err) writeError ??= err;
          else onBytes?.(n);
          if (pending === 0) settleFlushed?.();
        });
        if (!ok) {
          try {
            await waitForDrain();
          } catch (err) {
            writeError ??= err;
            throw err;
          }
        }
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      // The destination's errors are the caller's own; only read errors are classified here.
      if (writeError !== undefined) throw writeError;
      throw classifyRead(err);
    }
    if (pending > 0) await new Promise<void>((resolve) => (settleFlushed = resolve));
    if (writeError !== undefined) throw writeError;
    signal.throwIfAborted();
  } finally {
    signal.removeEventListener('abort', onAbort);
    to.removeListener('error', onDestinationError);
  }
}
