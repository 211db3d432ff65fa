/**
 * The HTTP/HTTPS `Source`: directory index pages (index-parse.ts) over one keep-alive pool.
 *
 * Sizes and times come from the index when it shows them exactly to the second (nginx JSON;
 * nginx's ETag is that same mtime and size in hex, so nothing is lost). Otherwise a wanted file
 * gets one HEAD, which also gives its strong ETag (the version key), unless the ledger already has
 * a settled version that agrees with the row (`ListOptions.known`): a no-change re-poll sends no
 * HEAD. A row that shows only the minute cannot tell a same-size rewrite inside that minute, so a
 * version not yet checked after its minute was over (plus clock skew) is asked about again.
 * Downloads require 200 (or 206 for a resume with `Range` + `If-Range`), check Content-Length and
 * the ETag against the listed version, and never stream an error page into the landing file.
 */
import type { Writable } from 'node:stream';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import { ChangedError, ConfigError, PermanentError, type PollerError, TransientError } from '../../errors.js';
import { CappedMap, MAX_FILE_HINTS } from '../capped-map.js';
import { assertTimeZone } from '../ftp/list-parse.js';
import type {
  DownloadOptions,
  KnownVersion,
  Listing,
  ListOptions,
  MtimePrecision,
  RemoteEntry,
  Source,
  SourceConnectOptions,
} from '../source.js';
import { createPool, discard, encodePath, type HttpReply, header, isDestinationError, readText } from './client.js';
import { classifyHttpError, type HttpErrorContext, type HttpOperation, statusError } from './errors.js';
import { getInto, type ReplyHead } from './get-into.js';
import { agreesWithIndex, type IndexEntry, parseIndex } from './index-parse.js';

/** Largest index page read (a 100,000-entry nginx page is about 15 MB). */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/**
 * How long after a listed minute ends a rewrite inside it may still happen by the server's clock:
 * the allowance for skew between its clock and ours.
 */
const CLOCK_SKEW_MS = 120_000;

/** What a HEAD or a listing told us about a file's validators, for If-Range on resume. */
interface Validators {
  etag?: string;
  lastModified?: string;
  /** When the HEAD that gave them was sent. */
  checkedMs: number;
}

/** A strong ETag, or undefined for none or a weak one (`W/"..."`: not a byte-for-byte validator). */
function strongEtag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  return v === '' || v.startsWith('W/') ? undefined : v;
}

export interface HttpSourceStats {
  heads: number;
  gets: number;
  indexes: number;
}

export type HttpSource = Source & { readonly stats: HttpSourceStats };

export function createHttpSource(opts: SourceConnectOptions): HttpSource {
  try {
    assertTimeZone(opts.timezone);
  } catch {
    throw new ConfigError([
      `source ${JSON.stringify(opts.name)}: timezone "${opts.timezone}" is not an IANA time zone; use e.g. UTC or Europe/Paris`,
    ]);
  }
  const scheme = opts.protocol === 'https' ? 'https' : 'http';
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const origin = `${scheme}://${host}:${opts.port}`;
  const root = `/${opts.rootPath.replace(/^\/+|\/+$/g, '')}/`.replace(/^\/\/$/, '/');
  const ctx: HttpContext = {
    opts,
    origin,
    rootUrlPath: encodePath(root),
    pool: createPool(origin, opts),
    heads: pLimit(Math.max(1, opts.maxConnections)),
    validators: new CappedMap<string, Validators>(MAX_FILE_HINTS),
    stats: { heads: 0, gets: 0, indexes: 0 },
    auth:
      opts.bearerToken !== undefined
        ? `Bearer ${opts.bearerToken}`
        : opts.user !== '' && opts.password !== undefined
          ? `Basic ${Buffer.from(`${opts.user}:${opts.password}`).toString('base64')}`
          : undefined,
    log: opts.log.child({ source: opts.name }),
  };
  let closed = false;
  return {
    displayUrl: `${origin}${ctx.rootUrlPath}`,
    stats: ctx.stats,
    list: (dir, listOpts) => listIndex(ctx, dir, listOpts),
    download: (remotePath, to, dl) => download(ctx, remotePath, to, dl),
    stat: (remotePath, statOpts) => headFile(ctx, remotePath.replace(/^\/+/, ''), statOpts.signal, statOpts.urlQuery),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await ctx.pool.close().catch(() => ctx.pool.destroy());
    },
  };
}

/** One origin and root: the pool, credentials, and what HEADs and listings taught. */
interface HttpContext {
  readonly opts: SourceConnectOptions;
  readonly origin: string;
  readonly rootUrlPath: string;
  readonly pool: ReturnType<typeof createPool>;
  /** HEADs of one listing run at most `maxConnections` at a time. */
  readonly heads: ReturnType<typeof pLimit>;
  readonly validators: CappedMap<string, Validators>;
  readonly stats: HttpSourceStats;
  /** The Authorization header, if any. */
  readonly auth: string | undefined;
  readonly log: Logger;
}

function errorContext(ctx: HttpContext, operation: HttpOperation, path?: string): HttpErrorContext {
  return { source: ctx.opts.name, operation, area: 'HTTP', ...(path !== undefined && { path }) };
}

/** A query string as a URL carries it (`?a=1`, percent-encoded), or '' when there is none. */
function queryOf(ctx: HttpContext, urlQuery: string | undefined): string {
  if (urlQuery === undefined || urlQuery === '' || urlQuery === '?') return '';
  if (!/^\?[\x21-\x7e]*$/.test(urlQuery) || urlQuery.includes('#')) {
    throw new PermanentError(
      'POLLER_HTTP_PATH_INVALID',
      `source ${JSON.stringify(ctx.opts.name)}: query ${JSON.stringify(urlQuery)} is not a percent-encoded URL query`,
    );
  }
  return urlQuery;
}

function urlPathOf(ctx: HttpContext, rel: string, dir: boolean): string {
  const clean = rel.replace(/^\/+|\/+$/g, '');
  if (/[\u0000-\u001f\u007f\\]/.test(clean) || clean.split('/').includes('..')) {
    throw new PermanentError(
      'POLLER_HTTP_PATH_INVALID',
      `source ${JSON.stringify(ctx.opts.name)}: path ${JSON.stringify(rel)} leaves the source root or has a control character or backslash`,
    );
  }
  if (clean === '') return ctx.rootUrlPath;
  return `${ctx.rootUrlPath}${encodePath(clean)}${dir ? '/' : ''}`;
}

async function send(
  ctx: HttpContext,
  method: 'GET' | 'HEAD',
  urlPath: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  c: HttpErrorContext,
): Promise<HttpReply> {
  signal.throwIfAborted();
  try {
    return await ctx.pool.request({
      method,
      path: urlPath,
      headers: { ...(ctx.auth !== undefined && { authorization: ctx.auth }), ...headers },
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw classifyHttpError(err, c);
  }
}

/** HEAD one file: its exact size and Last-Modified; undefined when it is gone. */
async function headFile(
  ctx: HttpContext,
  rel: string,
  signal: AbortSignal,
  urlQuery?: string,
): Promise<RemoteEntry | undefined> {
  ctx.stats.heads++;
  const checkedMs = Date.now();
  const c = errorContext(ctx, 'head', rel);
  const reply = await send(ctx, 'HEAD', urlPathOf(ctx, rel, false) + queryOf(ctx, urlQuery), {}, signal, c);
  await discard(reply);
  if (reply.statusCode === 404 || reply.statusCode === 410) return undefined;
  if (reply.statusCode !== 200) throw statusError(reply.statusCode, c, header(reply, 'retry-after'));
  const cl = header(reply, 'content-length');
  // Apache answers HEAD of an empty file without Content-Length: ask for its first byte instead.
  const size = cl !== undefined ? Number(cl) : await lengthByRange(ctx, rel, signal, c);
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new TransientError(
      'POLLER_HTTP_NO_LENGTH',
      `source ${JSON.stringify(ctx.opts.name)}: HEAD ${JSON.stringify(rel)} gave no Content-Length; will retry`,
    );
  }
  const lm = header(reply, 'last-modified');
  const mtimeMs = lm !== undefined ? Date.parse(lm) : Number.NaN;
  rememberValidators(ctx, rel, reply, checkedMs);
  const name = rel.slice(rel.lastIndexOf('/') + 1);
  const etag = strongEtag(header(reply, 'etag'));
  return {
    path: rel,
    name,
    type: 'file',
    sizeBytes: size,
    // No Last-Modified: the version is the size alone (a constant time).
    mtimeMs: Number.isFinite(mtimeMs) ? mtimeMs : 0,
    mtimePrecision: 's',
    ...(etag !== undefined && { etag }),
  };
}

/** A file's length from `GET Range: bytes=0-0` (206 Content-Range, or a 200's Content-Length). */
async function lengthByRange(ctx: HttpContext, rel: string, signal: AbortSignal, c: HttpErrorContext): Promise<number> {
  const reply = await send(ctx, 'GET', urlPathOf(ctx, rel, false), { range: 'bytes=0-0' }, signal, c);
  // At most a byte, or a whole body from a server without ranges: not read past a small limit.
  await discard(reply);
  if (reply.statusCode === 206) {
    const total = /\/(\d+)$/.exec(header(reply, 'content-range') ?? '');
    return total ? Number(total[1]) : Number.NaN;
  }
  if (reply.statusCode === 200) return Number(header(reply, 'content-length') ?? Number.NaN);
  if (reply.statusCode === 416) {
    const total = /^bytes \*\/(\d+)$/.exec(header(reply, 'content-range') ?? '');
    return total ? Number(total[1]) : Number.NaN;
  }
  throw statusError(reply.statusCode, c, header(reply, 'retry-after'));
}

function rememberValidators(ctx: HttpContext, rel: string, reply: HttpReply, checkedMs: number): void {
  const etag = strongEtag(header(reply, 'etag'));
  const lastModified = header(reply, 'last-modified');
  ctx.validators.set(rel, {
    // If-Range takes only a strong validator.
    ...(etag !== undefined && { etag }),
    ...(lastModified !== undefined && { lastModified }),
    checkedMs,
  });
}

/**
 * Whether a row that agrees with the known version could still hide a same-size rewrite: the
 * row shows only the minute, and the version was last checked (HEAD or GET) before that minute
 * was safely over, so a later write inside it would list the same.
 */
function couldHideRewrite(ctx: HttpContext, rel: string, known: KnownVersion, row: IndexEntry): boolean {
  if (row.mtimePrecision !== 'minute' || row.mtimeMs === undefined || known.mtimePrecision === 'minute') return false;
  const checkedMs = Math.max(known.fetchedMs ?? 0, ctx.validators.get(rel)?.checkedMs ?? 0);
  return checkedMs < row.mtimeMs + 60_000 + CLOCK_SKEW_MS;
}

/** One index row as an entry: from the row when exact, from the ledger when it agrees, else by HEAD. */
async function resolveEntry(
  ctx: HttpContext,
  rel: string,
  row: IndexEntry,
  listOpts: ListOptions,
): Promise<RemoteEntry | undefined> {
  const name = row.name;
  const fromRow = (): RemoteEntry => ({
    path: rel,
    name,
    type: row.type === 'dir' ? 'dir' : 'file',
    sizeBytes: row.type === 'dir' ? 0 : (row.sizeBytes ?? 0),
    mtimeMs: row.mtimeMs ?? 0,
    mtimePrecision: row.mtimePrecision ?? ('s' as MtimePrecision),
  });
  if (row.type === 'dir') return fromRow();
  // nginx JSON: exact size and second, which is all its ETag holds.
  if (row.sizeExact && row.mtimeMs !== undefined && row.mtimePrecision === 's') return fromRow();
  // Not wanted by the globs: the walk drops it; no request for it.
  if (listOpts.wanted && !listOpts.wanted(rel)) return fromRow();
  const known = await listOpts.known?.(rel);
  if (known?.settled && agreesWithIndex(known, row) && !couldHideRewrite(ctx, rel, known, row)) {
    return {
      path: rel,
      name,
      type: 'file',
      sizeBytes: known.sizeBytes,
      mtimeMs: known.mtimeMs,
      mtimePrecision: known.mtimePrecision,
      ...(known.etag !== undefined && { etag: known.etag }),
    };
  }
  return ctx.heads(() => headFile(ctx, rel, listOpts.signal));
}

async function listIndex(ctx: HttpContext, dir: string, listOpts: ListOptions): Promise<Listing> {
  const relDir = dir.replace(/^\/+|\/+$/g, '');
  const c = errorContext(ctx, 'list', relDir);
  const urlPath = urlPathOf(ctx, relDir, true);
  ctx.stats.indexes++;
  const reply = await send(ctx, 'GET', urlPath, { accept: 'text/html, application/json;q=0.9' }, listOpts.signal, c);
  if (reply.statusCode !== 200) {
    await discard(reply);
    throw statusError(reply.statusCode, c, header(reply, 'retry-after'));
  }
  let body: string;
  try {
    body = await readText(
      reply,
      MAX_INDEX_BYTES,
      `source ${JSON.stringify(ctx.opts.name)}: index of ${JSON.stringify(relDir)}`,
    );
  } catch (err) {
    throw classifyHttpError(err, c);
  }
  // nginx writes autoindex times in UTC (unless autoindex_localtime); others in the server's zone.
  const server = header(reply, 'server') ?? '';
  const timezone = /^nginx/i.test(server) ? 'UTC' : ctx.opts.timezone;
  const parsed = parseIndex(body, { dirUrl: `${ctx.origin}${urlPath}`, timezone });
  if (parsed.dropped > 0) {
    ctx.log.debug(
      { event: 'listing.links_dropped', dir: relDir, count: parsed.dropped },
      'index links outside the directory dropped',
    );
  }
  const resolved = await Promise.all(
    parsed.entries.map((row) => resolveEntry(ctx, relDir === '' ? row.name : `${relDir}/${row.name}`, row, listOpts)),
  );
  const out: Listing = [];
  for (const e of resolved) if (e !== undefined) out.push(e);
  return out;
}

/** Range and If-Range for a resume from `offset`, asking the server (HEAD) when no validator is known. */
async function resumeHeaders(
  ctx: HttpContext,
  rel: string,
  offset: number,
  dl: DownloadOptions,
  c: HttpErrorContext,
): Promise<Record<string, string>> {
  if (offset === 0) return {};
  let v: Omit<Validators, 'checkedMs'> | undefined =
    dl.expect?.etag !== undefined ? { etag: dl.expect.etag } : ctx.validators.get(rel);
  if (v?.etag === undefined && !(v?.lastModified !== undefined && dl.expect?.mtimePrecision === 's')) {
    // No strong validator known for this version (a restart, or an index without one): ask.
    const now = await headFile(ctx, rel, dl.signal);
    if (now === undefined) throw statusError(404, c);
    if (dl.expect && (now.sizeBytes !== dl.expect.sizeBytes || !agreesWithIndex(now, dl.expect))) {
      throw changed(ctx, rel, 'it changed since it was listed');
    }
    v = ctx.validators.get(rel);
  }
  const validator = v?.etag ?? v?.lastModified;
  if (validator === undefined)
    throw changed(ctx, rel, 'the server gives no validator (ETag or Last-Modified), so a resume cannot be checked');
  return { range: `bytes=${offset}-`, 'if-range': validator };
}

/**
 * Checks the reply is the listed version and the asked part; returns how many bytes at its start
 * are already in the partial (a server without ranges sends the whole file).
 */
function checkReply(
  ctx: HttpContext,
  reply: ReplyHead,
  rel: string,
  offset: number,
  ifRange: string | undefined,
  dl: DownloadOptions,
  c: HttpErrorContext,
): number {
  const status = reply.statusCode;
  let skipBytes = 0;
  if (status !== 200 && status !== 206) throw statusError(status, c, header(reply, 'retry-after'));
  if (offset > 0 && status === 200) {
    // Either the validator no longer matches (the file changed) or the server has no ranges
    // at all (python http.server): only in the second case are the first bytes still ours.
    const same = header(reply, 'etag') === ifRange || header(reply, 'last-modified') === ifRange;
    if (!same || header(reply, 'accept-ranges') === 'bytes') {
      throw changed(ctx, rel, 'the server sent the whole file to a resume: it changed');
    }
    skipBytes = offset;
  }
  if (offset === 0 && status === 206) throw changed(ctx, rel, 'the server sent a part of the file unasked');
  const replyEtag = strongEtag(header(reply, 'etag'));
  if (dl.expect?.etag !== undefined && replyEtag !== undefined && replyEtag !== dl.expect.etag) {
    // Rewritten since it was listed: these bytes are not the version the ledger recorded.
    throw changed(ctx, rel, 'its ETag differs from the listed version');
  }
  const size = header(reply, 'content-length');
  const expected = dl.expect ? dl.expect.sizeBytes - offset + skipBytes : undefined;
  if (size !== undefined && expected !== undefined && Number(size) !== expected) {
    throw changed(ctx, rel, `the server sends ${size} bytes where the listing makes ${expected}`);
  }
  if (status === 206) {
    const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header(reply, 'content-range') ?? '');
    if (
      !range ||
      Number(range[1]) !== offset ||
      (dl.expect && range[2] !== '*' && Number(range[2]) !== dl.expect.sizeBytes)
    ) {
      throw changed(ctx, rel, 'the server answered a resume with another range');
    }
  }
  return skipBytes;
}

async function download(ctx: HttpContext, remotePath: string, to: Writable, dl: DownloadOptions): Promise<void> {
  ctx.stats.gets++;
  const rel = remotePath.replace(/^\/+/, '');
  const c = errorContext(ctx, 'download', rel);
  const urlPath = urlPathOf(ctx, rel, false) + queryOf(ctx, dl.urlQuery);
  const offset = Math.max(0, Math.floor(dl.offsetBytes));
  const headers = await resumeHeaders(ctx, rel, offset, dl, c);
  if (ctx.auth !== undefined) headers['authorization'] = ctx.auth;
  let skipBytes = 0;
  try {
    const got = await getInto(ctx.pool, to, {
      path: urlPath,
      headers,
      signal: dl.signal,
      onBytes: dl.onBytes,
      check: (head) => {
        skipBytes = checkReply(ctx, head, rel, offset, headers['if-range'], dl, c);
        return skipBytes;
      },
    });
    const total = got.bytes + skipBytes;
    const expected = length(got);
    if (expected !== undefined && total !== expected) {
      throw new TransientError(
        'POLLER_HTTP_CONNECTION_LOST',
        `source ${JSON.stringify(ctx.opts.name)}: download ${JSON.stringify(rel)}: body ended at ${total} of ${expected} bytes; will resume`,
      );
    }
  } catch (err) {
    if (isDestinationError(err)) throw err;
    if (dl.signal.aborted) throw dl.signal.reason;
    throw classifyHttpError(err, c);
  }
}

function changed(ctx: HttpContext, rel: string, why: string): PollerError {
  return new ChangedError(
    'POLLER_HTTP_CHANGED',
    `source ${JSON.stringify(ctx.opts.name)}: download ${JSON.stringify(rel)}: ${why}; fetched again once it is stable`,
  );
}

function length(reply: ReplyHead): number | undefined {
  const v = header(reply, 'content-length');
  return v === undefined ? undefined : Number(v);
}
