import path from 'node:path';
import type { Writable } from 'node:stream';
import type { FileEntryWithStats, Stats } from 'ssh2';
import { PermanentError } from '../../errors.js';
import type { DownloadOptions, EntryType, RemoteEntry, Source, SourceConnectOptions } from '../source.js';
import { openSftpSession, resolveHostCheck, type SftpSession } from './connect.js';
import { classifySftpError, isSftpEof, isSftpNoSuchFile, type SftpErrorContext } from './errors.js';
import { pipelinedRead } from './pipelined-read.js';
import { SessionPool } from './session-pool.js';
import { request, type SessionContext, withSession } from './session-work.js';

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
  const hostCheck = resolveHostCheck(opts);
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
  const ctx: SftpContext = {
    opts,
    hostPort,
    pool,
    uses: new WeakMap(),
    isClosed: () => closed,
    rootPath,
    chunkBytes: tuning.readChunkBytes ?? READ_CHUNK_BYTES,
    readsInFlight: tuning.readsInFlight ?? READS_IN_FLIGHT,
  };
  return {
    displayUrl,
    list: (dir, o) => classified(ctx, normaliseRelative(dir) || '/', o.signal, () => listDirectory(ctx, dir, o.signal)),
    download: (rel, to, o) => download(ctx, rel, to, o),
    stat: (rel, o) => classified(ctx, normaliseRelative(rel), o.signal, () => stat(ctx, rel, o.signal)),
    remove: (rel, o) => classified(ctx, normaliseRelative(rel), o.signal, () => remove(ctx, rel, o.signal)),
    rename: (from, to, o) => classified(ctx, normaliseRelative(from), o.signal, () => rename(ctx, from, to, o.signal)),
    close: async () => {
      closed = true;
      pool.close();
    },
  };
}

/** One source's sessions, root and read tuning. */
interface SftpContext extends SessionContext {
  readonly rootPath: string;
  readonly chunkBytes: number;
  readonly readsInFlight: number;
}

function errCtx(ctx: SftpContext, rel?: string): SftpErrorContext {
  const secrets = [ctx.opts.password, ctx.opts.passphrase];
  return rel === undefined
    ? { source: ctx.opts.name, hostPort: ctx.hostPort, secrets }
    : { source: ctx.opts.name, hostPort: ctx.hostPort, path: rel, secrets };
}

/** Runs `work`, classifying what it throws (the abort reason passes through unchanged). */
async function classified<T>(ctx: SftpContext, rel: string, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw signal.aborted && err === signal.reason ? err : classifySftpError(err, errCtx(ctx, rel));
  }
}

/** Maps a relative path under the root; refuses paths that climb out of it. */
function remotePathOf(ctx: SftpContext, rel: string): string {
  const { rootPath } = ctx;
  const clean = normaliseRelative(rel);
  const full = path.posix.join(rootPath, clean);
  if (full !== rootPath && !full.startsWith(rootPath === '/' ? '/' : `${rootPath}/`)) {
    throw new PermanentError(
      'POLLER_SFTP_PATH_OUTSIDE_ROOT',
      `sftp source "${ctx.opts.name}": ${rel} points outside the source root; it is not followed`,
    );
  }
  return full;
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

async function listDirectory(ctx: SftpContext, dir: string, signal: AbortSignal): Promise<RemoteEntry[]> {
  const rel = normaliseRelative(dir);
  const remote = remotePathOf(ctx, rel);
  return await withSession(
    ctx,
    signal,
    async (session) => {
      const handle = await request<Buffer>(ctx, session, rel || '/', signal, (s, cb) => s.opendir(remote, cb));
      try {
        return await readEntries(ctx, session, handle, rel, signal);
      } finally {
        if (session.isAlive()) session.sftp.close(handle, () => {});
      }
    },
    true,
  );
}

/** Reads an open directory to its end (or the entry cap, with a warning). */
async function readEntries(
  ctx: SftpContext,
  session: SftpSession,
  handle: Buffer,
  rel: string,
  signal: AbortSignal,
): Promise<RemoteEntry[]> {
  const entries: RemoteEntry[] = [];
  // Bounded: each round returns at least one entry or EOF, and the total is capped.
  while (entries.length < MAX_LIST_ENTRIES) {
    signal.throwIfAborted();
    let batch: FileEntryWithStats[];
    try {
      batch = await request<FileEntryWithStats[]>(ctx, session, rel || '/', signal, (s, cb) => s.readdir(handle, cb));
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
    ctx.opts.log.warn(
      { event: 'listing.truncated', source: ctx.opts.name, dir: rel, entries: entries.length },
      'directory listing cut at the entry cap',
    );
  }
  return entries;
}

async function download(
  ctx: SftpContext,
  rel: string,
  to: Writable,
  { offsetBytes, signal, onBytes }: DownloadOptions,
): Promise<void> {
  const clean = normaliseRelative(rel);
  const remote = remotePathOf(ctx, clean);
  // pipelinedRead classifies the server's errors; the destination stream's own errors and the
  // abort reason pass through unchanged.
  await withSession(ctx, signal, (session) =>
    pipelinedRead(session.sftp, remote, to, {
      offsetBytes,
      signal,
      onBytes,
      chunkBytes: ctx.chunkBytes,
      maxInFlight: ctx.readsInFlight,
      idleTimeoutMs: ctx.opts.dataTimeoutMs,
      onStalled: () => session.destroy(),
      isAlive: () => session.isAlive(),
      classify: (err) => classifySftpError(err, errCtx(ctx, clean)),
      describe: `sftp source "${ctx.opts.name}": ${clean}`,
    }),
  );
}

async function stat(ctx: SftpContext, rel: string, signal: AbortSignal): Promise<RemoteEntry | undefined> {
  const clean = normaliseRelative(rel);
  const remote = remotePathOf(ctx, clean);
  return await withSession(
    ctx,
    signal,
    async (session) => {
      let attrs: Stats;
      try {
        attrs = await request<Stats>(ctx, session, clean, signal, (s, cb) => s.stat(remote, cb));
      } catch (err) {
        if (isSftpNoSuchFile(err)) return undefined;
        throw err;
      }
      const dir = path.posix.dirname(clean);
      return toEntry(dir === '.' ? '' : dir, path.posix.basename(clean), attrs);
    },
    true,
  );
}

async function remove(ctx: SftpContext, rel: string, signal: AbortSignal): Promise<void> {
  const clean = normaliseRelative(rel);
  const remote = remotePathOf(ctx, clean);
  await withSession(ctx, signal, (session) =>
    request<void>(ctx, session, clean, signal, (s, cb) => s.unlink(remote, (err) => cb(err, undefined))),
  );
}

async function rename(ctx: SftpContext, from: string, to: string, signal: AbortSignal): Promise<void> {
  const src = normaliseRelative(from);
  const remoteFrom = remotePathOf(ctx, src);
  const remoteTo = remotePathOf(ctx, normaliseRelative(to));
  await withSession(ctx, signal, (session) =>
    request<void>(ctx, session, src, signal, (s, cb) => s.rename(remoteFrom, remoteTo, (err) => cb(err, undefined))),
  );
}
