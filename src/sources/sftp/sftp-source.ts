import path from 'node:path';
import type { Writable } from 'node:stream';
import type { FileEntryWithStats, SFTPWrapper, Stats } from 'ssh2';
import { PermanentError, PollerError, TransientError } from '../../errors.js';
import type { DownloadOptions, EntryType, ListOptions, RemoteEntry, Source, SourceConnectOptions } from '../source.js';
import { openSftpSession, resolveHostCheck, type SftpSession } from './connect.js';
import { classifySftpError, isSftpEof, isSftpNoSuchFile, type SftpErrorContext } from './errors.js';
import { pipelinedRead } from './pipelined-read.js';
import { SessionPool } from './session-pool.js';

/**
 * READ size and depth of the pipeline. OpenSSH accepts reads up to 255 KiB (limits@openssh.com),
 * ssh2's own server and many others about 32 KiB; the size is capped per server. 64 requests of
 * 128 KiB matched OpenSSH's sftp client over loopback (bench/sftp-throughput.ts) while bounding
 * memory to 8 MiB per transfer.
 */
const READ_CHUNK_BYTES = 128 * 1024;
const READS_IN_FLIGHT = 64;
/** Close a pooled connection nobody used for this long: servers drop idle sessions anyway. */
const IDLE_CLOSE_MS = 60_000;
/** A directory bigger than this is listed only this far, with a warning (memory bound). */
const MAX_LIST_ENTRIES = 1_000_000;

/** Tuning knobs for benchmarks and tests; the defaults suit loopback and WAN alike. */
export interface SftpTuning {
  readChunkBytes?: number;
  readsInFlight?: number;
}

function entryType(attrs: Stats): EntryType | undefined {
  if (attrs.isSymbolicLink()) return 'link';
  if (attrs.isDirectory()) return 'dir';
  if (attrs.isFile()) return 'file';
  // Servers that send no permissions bits (mode 0) list plain files.
  if (!attrs.mode) return 'file';
  return undefined;
}

function normaliseRelative(rel: string): string {
  const trimmed = rel.replace(/^\/+|\/+$/g, '');
  return trimmed === '.' ? '' : trimmed;
}

/**
 * An SFTP source over ssh2: a pool of up to `maxConnections` SSH connections with one SFTP
 * channel each, host key checked against `hostKey` or `knownHosts` (refused without either,
 * unless `tls.insecure`), pipelined reads for downloads.
 *
 * `download` writes the bytes from `offsetBytes` up to the size the file had when opened, in
 * order, and resolves once `to` has called back for the last chunk; it never ends `to`. After a
 * failure, what reached `to` is a correct prefix, so a retry can resume from its length.
 * Errors of `to` itself and the abort reason are passed through unchanged.
 */
export function createSftpSource(opts: SourceConnectOptions, tuning: SftpTuning = {}): Source {
  const hostPort = `${opts.host}:${opts.port}`;
  const rootPath = path.posix.resolve('/', opts.rootPath === '' ? '/' : opts.rootPath);
  const displayUrl = `sftp://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}${opts.port === 22 ? '' : `:${opts.port}`}${encodeURI(rootPath)}`;
  const secrets = [opts.password, opts.passphrase];
  const hostCheck = resolveHostCheck(opts);
  const chunkBytes = tuning.readChunkBytes ?? READ_CHUNK_BYTES;
  const readsInFlight = tuning.readsInFlight ?? READS_IN_FLIGHT;

  /** Numbers sessions in debug logs. */
  let sessionsOpened = 0;
  const pool = new SessionPool<SftpSession>({
    max: opts.maxConnections,
    idleCloseMs: IDLE_CLOSE_MS,
    open: (signal) => {
      if ('error' in hostCheck) return Promise.reject(hostCheck.error);
      sessionsOpened += 1;
      return openSftpSession(opts, hostCheck, sessionsOpened, signal);
    },
  });
  let closed = false;

  function errCtx(rel?: string): SftpErrorContext {
    return rel === undefined
      ? { source: opts.name, hostPort, secrets }
      : { source: opts.name, hostPort, path: rel, secrets };
  }

  /** Maps a relative path under the root; refuses paths that climb out of it. */
  function remotePathOf(rel: string): string {
    const clean = normaliseRelative(rel);
    const full = path.posix.join(rootPath, clean);
    if (full !== rootPath && !full.startsWith(rootPath === '/' ? '/' : `${rootPath}/`)) {
      throw new PermanentError(
        'POLLER_SFTP_PATH_OUTSIDE_ROOT',
        `sftp source "${opts.name}": ${rel} points outside the source root; it is not followed`,
      );
    }
    return full;
  }

  /** Runs one SFTP request with the data timeout and the caller's signal. */
  function request<T>(
    session: SftpSession,
    rel: string | undefined,
    signal: AbortSignal,
    fn: (sftp: SFTPWrapper, cb: (err: Error | undefined | null, value: T) => void) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const settle = (err: unknown, value?: T): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (err !== undefined) reject(err);
        else resolve(value as T);
      };
      const timer = setTimeout(() => {
        session.destroy();
        settle(
          new TransientError(
            'POLLER_SFTP_TIMEOUT',
            `sftp source "${opts.name}": ${rel ?? hostPort}: no reply within ${opts.dataTimeoutMs} ms; will retry`,
          ),
        );
      }, opts.dataTimeoutMs);
      const onAbort = (): void => settle(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      // ssh2 drops requests on a closed channel without a reply; fail fast instead of timing out.
      if (!session.isAlive()) return settle(new Error('connection closed'));
      try {
        fn(session.sftp, (err, value) => (err ? settle(err) : settle(undefined, value)));
      } catch (err) {
        settle(err);
      }
    });
  }

  /** How often each live session has been handed out; a reused one may have died while idle. */
  const uses = new WeakMap<SftpSession, number>();

  /**
   * Runs `work` on a pooled session. With `retryStale`, work that failed because a reused
   * session turned out dead (dropped while idle, before its 'close' arrived) runs once more on a
   * fresh one; only read-only work asks for that.
   */
  async function withSession<T>(
    signal: AbortSignal,
    work: (session: SftpSession) => Promise<T>,
    retryStale = false,
  ): Promise<T> {
    const closedError = () => new TransientError('POLLER_SFTP_CLOSED', `sftp source "${opts.name}": source is closed`);
    for (let attempt = 1; ; attempt++) {
      if (closed) throw closedError();
      let session: SftpSession;
      try {
        session = await pool.acquire(signal);
      } catch (err) {
        throw err instanceof PollerError || (signal.aborted && err === signal.reason) ? err : closedError();
      }
      const used = (uses.get(session) ?? 0) + 1;
      uses.set(session, used);
      try {
        return await work(session);
      } catch (err) {
        const stale =
          retryStale &&
          attempt === 1 &&
          used > 1 &&
          !session.isAlive() &&
          !signal.aborted &&
          !(err instanceof PollerError) &&
          typeof (err as { code?: unknown } | null)?.code !== 'number';
        if (!stale) throw err;
        opts.log.debug({ event: 'source.reconnected', source: opts.name, session: session.id }, 'stale sftp session');
      } finally {
        pool.release(session);
      }
    }
  }

  function toEntry(rel: string, name: string, attrs: Stats): RemoteEntry | undefined {
    const type = entryType(attrs);
    if (type === undefined) return undefined;
    return {
      path: rel === '' ? name : `${rel}/${name}`,
      name,
      type,
      sizeBytes: attrs.size ?? 0,
      mtimeMs: (attrs.mtime ?? 0) * 1000,
      mtimePrecision: 's',
    };
  }

  async function list(dir: string, { signal }: ListOptions): Promise<RemoteEntry[]> {
    const rel = normaliseRelative(dir);
    const remote = remotePathOf(rel);
    try {
      return await withSession(
        signal,
        async (session) => {
          const handle = await request<Buffer>(session, rel || '/', signal, (s, cb) => s.opendir(remote, cb));
          const entries: RemoteEntry[] = [];
          try {
            // Bounded: each round returns at least one entry or EOF, and the total is capped.
            while (entries.length < MAX_LIST_ENTRIES) {
              signal.throwIfAborted();
              let batch: FileEntryWithStats[];
              try {
                batch = await request<FileEntryWithStats[]>(session, rel || '/', signal, (s, cb) =>
                  s.readdir(handle, cb),
                );
              } catch (err) {
                if (isSftpEof(err)) break;
                throw err;
              }
              if (batch.length === 0) break;
              for (const e of batch) {
                if (e.filename === '.' || e.filename === '..') continue;
                const entry = toEntry(rel, e.filename, e.attrs);
                if (entry !== undefined) entries.push(entry);
              }
            }
            if (entries.length >= MAX_LIST_ENTRIES) {
              opts.log.warn(
                { event: 'listing.truncated', source: opts.name, dir: rel, entries: entries.length },
                'directory listing cut at the entry cap',
              );
            }
          } finally {
            if (session.isAlive()) session.sftp.close(handle, () => {});
          }
          return entries;
        },
        true,
      );
    } catch (err) {
      throw signal.aborted && err === signal.reason ? err : classifySftpError(err, errCtx(rel || '/'));
    }
  }

  async function download(rel: string, to: Writable, { offsetBytes, signal, onBytes }: DownloadOptions): Promise<void> {
    const clean = normaliseRelative(rel);
    const remote = remotePathOf(clean);
    // pipelinedRead classifies the server's errors; the destination stream's own errors and the
    // abort reason pass through unchanged.
    await withSession(signal, (session) =>
      pipelinedRead(session.sftp, remote, to, {
        offsetBytes,
        signal,
        onBytes,
        chunkBytes,
        maxInFlight: readsInFlight,
        idleTimeoutMs: opts.dataTimeoutMs,
        onStalled: () => session.destroy(),
        isAlive: () => session.isAlive(),
        classify: (err) => classifySftpError(err, errCtx(clean)),
        describe: `sftp source "${opts.name}": ${clean}`,
      }),
    );
  }

  async function stat(rel: string, { signal }: ListOptions): Promise<RemoteEntry | undefined> {
    const clean = normaliseRelative(rel);
    const remote = remotePathOf(clean);
    try {
      return await withSession(
        signal,
        async (session) => {
          let attrs: Stats;
          try {
            attrs = await request<Stats>(session, clean, signal, (s, cb) => s.stat(remote, cb));
          } catch (err) {
            if (isSftpNoSuchFile(err)) return undefined;
            throw err;
          }
          const dir = path.posix.dirname(clean);
          return toEntry(dir === '.' ? '' : dir, path.posix.basename(clean), attrs);
        },
        true,
      );
    } catch (err) {
      throw signal.aborted && err === signal.reason ? err : classifySftpError(err, errCtx(clean));
    }
  }

  async function remove(rel: string, { signal }: ListOptions): Promise<void> {
    const clean = normaliseRelative(rel);
    const remote = remotePathOf(clean);
    try {
      await withSession(signal, (session) =>
        request<void>(session, clean, signal, (s, cb) => s.unlink(remote, (err) => cb(err, undefined))),
      );
    } catch (err) {
      throw signal.aborted && err === signal.reason ? err : classifySftpError(err, errCtx(clean));
    }
  }

  async function rename(from: string, to: string, { signal }: ListOptions): Promise<void> {
    const src = normaliseRelative(from);
    const dst = normaliseRelative(to);
    const remoteFrom = remotePathOf(src);
    const remoteTo = remotePathOf(dst);
    try {
      await withSession(signal, (session) =>
        request<void>(session, src, signal, (s, cb) => s.rename(remoteFrom, remoteTo, (err) => cb(err, undefined))),
      );
    } catch (err) {
      throw signal.aborted && err === signal.reason ? err : classifySftpError(err, errCtx(src));
    }
  }

  return {
    displayUrl,
    list,
    download,
    stat,
    remove,
    rename,
    close: async () => {
      closed = true;
      pool.close();
    },
  };
}
