/**
 * The FTP/FTPS `Source`: a client pool (client-pool.ts), MLSD/LIST listings (list.ts) and
 * downloads with REST resume over poller's own RETR (retrieve.ts), with every error classified at
 * this boundary (errors.ts).
 */
import path from 'node:path';
import type { Writable } from 'node:stream';
import { FTPError } from 'basic-ftp';
import type { Logger } from 'pino';
import { ConfigError, PermanentError } from '../../errors.js';
import type { DownloadOptions, Listing, ListOptions, RemoteEntry, Source, SourceConnectOptions } from '../source.js';
import { FtpClientPool, type FtpPoolSettings, type PooledClient } from './client-pool.js';
import { listDirectory } from './list.js';
import { assertTimeZone, parseMlsd, parseMlsdTime } from './list-parse.js';
import { openDataConnectionAhead } from './passive.js';
import { retrieve } from './retrieve.js';

export { createHostBudget, type HostBudget } from './host-budget.js';

/** Unparsed listing lines quoted in one log line. */
const MAX_LOGGED_LINES = 5;

/** Options of an FTP/FTPS source: the common connect options plus pool tuning and a shared host budget. */
export interface FtpSourceOptions extends SourceConnectOptions, FtpPoolSettings {}

/**
 * Creates an FTP (`protocol: 'ftp'`) or FTPS (`protocol: 'ftps'`, `tls.mode` explicit or implicit)
 * source. Connections open lazily, up to `maxConnections` (and the shared `hostBudget`).
 *
 * Listing a directory that does not exist rejects with PermanentError `POLLER_FTP_NOT_AVAILABLE`.
 * The listing's `truncated` flag is set (and `listing.truncated` logged) when the entry count
 * looks like a server cap.
 */
export function createFtpSource(opts: FtpSourceOptions): Source {
  try {
    assertTimeZone(opts.timezone);
  } catch {
    throw new ConfigError([
      `source ${JSON.stringify(opts.name)}: timezone "${opts.timezone}" is not an IANA time zone; use e.g. UTC or Europe/Paris`,
    ]);
  }
  const tlsMode = opts.protocol === 'ftps' && opts.tls.mode === 'none' ? 'explicit' : opts.tls.mode;
  const connect: SourceConnectOptions = { ...opts, tls: { ...opts.tls, mode: tlsMode } };
  const pool = new FtpClientPool(connect, opts);
  const log = opts.log.child({ source: opts.name });
  const root = normaliseRoot(opts.rootPath);
  const scheme = tlsMode === 'none' ? 'ftp' : 'ftps';
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const displayUrl = `${scheme}://${host}:${opts.port}${root === '/' ? '/' : root}`;

  const toRemote = (relative: string): string => {
    const clean = relative.replace(/^\/+/, '');
    if (/[\u0000-\u001f\u007f\\]/.test(clean) || clean.split('/').includes('..')) {
      throw new PermanentError(
        'POLLER_FTP_PATH_INVALID',
        `source ${JSON.stringify(opts.name)}: path ${JSON.stringify(relative)} leaves the source root or has a control character or backslash; it is not fetched`,
      );
    }
    return clean === '' ? root : path.posix.join(root, clean);
  };

  return {
    displayUrl,

    list: (dir: string, listOpts: ListOptions) => listFtpDirectory({ pool, opts, log, toRemote }, dir, listOpts),

    async download(remotePath: string, to: Writable, dlOpts: DownloadOptions): Promise<void> {
      const abs = toRemote(remotePath);
      const offset = Math.max(0, Math.floor(dlOpts.offsetBytes));
      await pool.use('download', remotePath, dlOpts.signal, async (pc) => {
        const { client } = pc;
        await client.prepareTransfer(client.ftp);
        await retrieve(client.ftp, { path: abs, offsetBytes: offset, to, onBytes: dlOpts.onBytes });
        // The next file's data connection opens while this one is being landed.
        pc.ahead = openDataConnectionAhead(client).catch(() => undefined);
      });
    },

    async stat(remotePath: string, statOpts: ListOptions): Promise<RemoteEntry | undefined> {
      const abs = toRemote(remotePath);
      const rel = remotePath.replace(/^\/+/, '');
      return await pool.use('stat', rel, statOpts.signal, (pc) => statRemote(pc, abs, rel));
    },

    async remove(remotePath: string, rmOpts: ListOptions): Promise<void> {
      const abs = toRemote(remotePath);
      await pool.use('remove', remotePath, rmOpts.signal, async (pc) => {
        await pc.client.send(`DELE ${abs}`);
      });
    },

    async rename(from: string, to: string, mvOpts: ListOptions): Promise<void> {
      const absFrom = toRemote(from);
      const absTo = toRemote(to);
      await pool.use('rename', from, mvOpts.signal, async (pc) => {
        await pc.client.send(`RNFR ${absFrom}`);
        await pc.client.send(`RNTO ${absTo}`);
      });
    },

    close: () => pool.close(),
  };
}

/** What listing a directory needs from its source. */
interface ListContext {
  readonly pool: FtpClientPool;
  readonly opts: FtpSourceOptions;
  readonly log: Logger;
  readonly toRemote: (relative: string) => string;
}

/** Lists one directory: entries with paths relative to the root, odd lines counted and logged once. */
async function listFtpDirectory(
  { pool, opts, log, toRemote }: ListContext,
  dir: string,
  listOpts: ListOptions,
): Promise<Listing> {
  const relDir = dir.replace(/^\/+|\/+$/g, '');
  const abs = toRemote(relDir);
  const result = await pool.use('list', relDir, listOpts.signal, (pc) =>
    listDirectory(pc, abs, {
      source: opts.name,
      dir: relDir,
      timezone: opts.timezone,
      nowMs: Date.now(),
      maxListingBytes: pool.maxListingBytes,
    }),
  );
  if (result.unparsed.length > 0) {
    // A few examples and the count: a server in an unknown format must not flood the log each poll.
    log.warn(
      {
        event: 'listing.lines_skipped',
        dir: relDir,
        count: result.unparsed.length,
        examples: result.unparsed.slice(0, MAX_LOGGED_LINES).map((line) => line.slice(0, 300)),
      },
      'listing lines not understood were skipped',
    );
  }
  const entries: Listing = [];
  for (const e of result.entries) {
    if (e.name.includes('/') || e.name.includes('\0')) {
      log.warn({ event: 'listing.lines_skipped', dir: relDir, name: e.name }, 'entry name with a slash or NUL skipped');
      continue;
    }
    entries.push({
      path: relDir === '' ? e.name : `${relDir}/${e.name}`,
      name: e.name,
      type: e.type,
      sizeBytes: e.sizeBytes,
      mtimeMs: e.mtimeMs,
      mtimePrecision: e.mtimePrecision,
    });
  }
  if (result.unparsed.length > 0) entries.unparsedLines = result.unparsed.length;
  if (result.truncated) {
    entries.truncated = true;
    log.warn(
      { event: 'listing.truncated', dir: relDir, entries: result.lineCount, command: result.command },
      'listing looks cut short by a server cap: files past the cap are not seen; raise the server limit or use narrower dated directories',
    );
  }
  return entries;
}

function normaliseRoot(rootPath: string): string {
  const joined = path.posix.normalize(`/${rootPath || '/'}`);
  return joined.length > 1 ? joined.replace(/\/+$/, '') : '/';
}

/**
 * Size and mtime of one file: MLST when the server has it (exact, UTC), else SIZE + MDTM.
 * A 550 means "not there" and gives undefined.
 */
async function statRemote(pc: PooledClient, abs: string, rel: string): Promise<RemoteEntry | undefined> {
  const name = path.posix.basename(rel);
  if (pc.mlsd) {
    const res = await pc.client.sendIgnoringError(`MLST ${abs}`);
    if (res.code === 550) return undefined;
    if (res.code >= 400) throw new FTPError(res);
    // The facts line is the indented line of the multi-line 250 reply.
    const factLine = res.message.split(/\r?\n/).find((line) => line.startsWith(' '));
    const entry = factLine !== undefined ? parseMlsd(factLine.slice(1)).entries[0] : undefined;
    if (entry === undefined) return undefined;
    // An MLST without size or modify facts: SIZE and MDTM below say what it left out.
    if (entry.sizeBytes !== undefined && entry.mtimeMs !== undefined) {
      return {
        path: rel,
        name,
        type: entry.type,
        sizeBytes: entry.sizeBytes,
        mtimeMs: entry.mtimeMs,
        mtimePrecision: entry.mtimePrecision,
      };
    }
  }
  const sizeRes = await pc.client.sendIgnoringError(`SIZE ${abs}`);
  if (sizeRes.code === 550) return undefined;
  if (sizeRes.code >= 400) throw new FTPError(sizeRes);
  const sizeBytes = Number.parseInt(sizeRes.message.slice(4), 10);
  const mdtmRes = await pc.client.sendIgnoringError(`MDTM ${abs}`);
  if (mdtmRes.code === 550) return undefined;
  if (mdtmRes.code >= 400) throw new FTPError(mdtmRes);
  const mtime = parseMlsdTime(mdtmRes.message.slice(4));
  if (!Number.isFinite(sizeBytes) || mtime === undefined) {
    throw new FTPError({ code: 501, message: `unexpected SIZE/MDTM replies: ${sizeRes.message} / ${mdtmRes.message}` });
  }
  return { path: rel, name, type: 'file', sizeBytes, mtimeMs: mtime.ms, mtimePrecision: mtime.precision };
}
