/**
 * The S3 `Source`: ListObjectsV2 with `delimiter=/` (one "directory" per call, so date templates
 * narrow the listing to a prefix), paged by continuation token; GET with `Range` + `If-Match`
 * for resume; DeleteObject for `after: delete`. Requests are signed with SigV4 (sigv4.ts) or sent
 * unsigned for public buckets, over the same undici pool and error classes as the HTTP source.
 */
import type { Writable } from 'node:stream';
import {
  ChangedError,
  ConfigError,
  type PollerError,
  SourceError,
  ThrottledError,
  TransientError,
} from '../../errors.js';
import { CappedMap, MAX_FILE_HINTS } from '../capped-map.js';
import {
  createPool,
  discard,
  type HttpReply,
  header,
  isDestinationError,
  readText,
  streamBody,
} from '../http/client.js';
import { classifyHttpError, type HttpErrorContext, type HttpOperation, statusError } from '../http/errors.js';
import type { DownloadOptions, Listing, RemoteEntry, S3Settings, Source, SourceConnectOptions } from '../source.js';
import {
  type CredentialProvider,
  createInstanceProfileCredentials,
  DEFAULT_IMDS_ENDPOINT,
} from './instance-profile.js';
import { parseListObjects, xmlErrorCode } from './list-xml.js';
import { awsEncodePath, canonicalQuery, signRequest } from './sigv4.js';

/** S3's own page cap; a smaller page is only for tests of the paging. */
const DEFAULT_PAGE_SIZE = 1000;
/** Pages read for one directory (10 million keys at 1,000 a page). */
const MAX_PAGES = 10_000;
/** One ListObjectsV2 page of 1,000 keys is about 350 KB of XML. */
const MAX_LIST_BYTES = 16 * 1024 * 1024;

export interface S3SourceStats {
  listPages: number;
  gets: number;
  deletes: number;
}

export type S3Source = Source & { readonly stats: S3SourceStats };

export function createS3Source(opts: SourceConnectOptions & { pageSize?: number }): S3Source {
  const s3 = opts.s3;
  if (!s3) throw new ConfigError([`source ${JSON.stringify(opts.name)}: s3 settings missing`]);
  const endpoint = new URL(s3.endpoint ?? `https://s3.${s3.region}.amazonaws.com`);
  const base = s3.forcePathStyle ? endpoint : new URL(`${endpoint.protocol}//${s3.bucket}.${endpoint.host}`);
  // The key prefix comes from the URL path as prepared (date templates cut off into the globs).
  const rootPrefix = opts.rootPath.replace(/^\/+/, '');
  const keyPrefix = rootPrefix === '' || rootPrefix.endsWith('/') ? rootPrefix : `${rootPrefix}/`;
  const ctx: S3Context = {
    opts,
    s3,
    base,
    keyPathPrefix: s3.forcePathStyle ? `/${s3.bucket}/` : '/',
    keyPrefix,
    pool: createPool(base.origin, opts),
    pageSize: Math.max(1, Math.min(DEFAULT_PAGE_SIZE, opts.pageSize ?? DEFAULT_PAGE_SIZE)),
    etags: new CappedMap<string, string>(MAX_FILE_HINTS),
    profile:
      s3.credentials === undefined && s3.instanceProfile !== undefined
        ? createInstanceProfileCredentials({
            source: opts.name,
            endpoint: s3.instanceProfile.endpoint ?? DEFAULT_IMDS_ENDPOINT,
          })
        : undefined,
    stats: { listPages: 0, gets: 0, deletes: 0 },
  };
  let closed = false;
  return {
    displayUrl: `s3://${s3.bucket}/${keyPrefix}`,
    stats: ctx.stats,
    list: (dir, listOpts) => listDirectory(ctx, dir, listOpts.signal),
    download: (remotePath, to, dl) => download(ctx, remotePath, to, dl),
    stat: (remotePath, statOpts) => stat(ctx, remotePath, statOpts.signal),
    remove: (remotePath, rmOpts) => remove(ctx, remotePath, rmOpts.signal),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await ctx.pool.close().catch(() => ctx.pool.destroy());
    },
  };
}

/** One bucket and prefix: where requests go, how they are signed, what listings taught. */
interface S3Context {
  readonly opts: SourceConnectOptions;
  readonly s3: S3Settings;
  readonly base: URL;
  /** `/bucket/` in path style, `/` with the bucket in the host name. */
  readonly keyPathPrefix: string;
  readonly keyPrefix: string;
  readonly pool: ReturnType<typeof createPool>;
  readonly pageSize: number;
  /** ETags seen in listings, for `If-Match` on a resume. */
  readonly etags: CappedMap<string, string>;
  readonly profile: CredentialProvider | undefined;
  readonly stats: S3SourceStats;
}

function errorContext(ctx: S3Context, operation: HttpOperation, path?: string): HttpErrorContext {
  return { source: ctx.opts.name, operation, area: 'S3', ...(path !== undefined && { path }) };
}

function keyOf(ctx: S3Context, rel: string): string {
  return `${ctx.keyPrefix}${rel.replace(/^\/+/, '')}`;
}

/** One signed (or anonymous) request; connection failures come out classified. */
async function send(
  ctx: S3Context,
  method: 'GET' | 'HEAD' | 'DELETE',
  key: string,
  query: Record<string, string>,
  extra: Record<string, string>,
  signal: AbortSignal,
  c: HttpErrorContext,
): Promise<HttpReply> {
  const { s3 } = ctx;
  signal.throwIfAborted();
  const path =
    s3.forcePathStyle && key === '' ? `/${awsEncodePath(s3.bucket)}` : awsEncodePath(`${ctx.keyPathPrefix}${key}`);
  const credentials = s3.credentials ?? (await ctx.profile?.get(signal));
  const signed = credentials
    ? signRequest({
        method,
        host: ctx.base.host,
        encodedPath: path,
        query,
        region: s3.region,
        credentials,
        nowMs: Date.now(),
      })
    : {};
  const qs = canonicalQuery(query);
  try {
    return await ctx.pool.request({
      method,
      path: qs === '' ? path : `${path}?${qs}`,
      headers: { ...signed, ...extra },
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw classifyHttpError(err, c);
  }
}

/** An error for a reply we do not accept, with S3's error code from the XML body. */
async function replyError(ctx: S3Context, reply: HttpReply, c: HttpErrorContext): Promise<PollerError> {
  let code: string | undefined;
  if (reply.statusCode !== 304 && reply.statusCode !== 412) {
    code = xmlErrorCode(await readText(reply, 64 * 1024, 'S3 error').catch(() => ''));
  } else {
    await discard(reply);
  }
  if (code === 'NoSuchBucket') {
    return new SourceError(
      'POLLER_S3_NO_BUCKET',
      `source ${JSON.stringify(ctx.opts.name)}: bucket ${JSON.stringify(ctx.s3.bucket)} does not exist; check the bucket in the URL, endpoint and region`,
    );
  }
  if (code === 'SlowDown') {
    return new ThrottledError(
      'POLLER_S3_THROTTLED',
      `source ${JSON.stringify(ctx.opts.name)}: ${c.operation}: S3 asked to slow down; backing off`,
    );
  }
  return statusError(reply.statusCode, c, header(reply, 'retry-after'), code);
}

async function listDirectory(ctx: S3Context, dir: string, signal: AbortSignal): Promise<Listing> {
  const relDir = dir.replace(/^\/+|\/+$/g, '');
  const prefix = relDir === '' ? ctx.keyPrefix : `${ctx.keyPrefix}${relDir}/`;
  const c = errorContext(ctx, 'list', relDir);
  const out: Listing = [];
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    ctx.stats.listPages++;
    const query: Record<string, string> = {
      'list-type': '2',
      delimiter: '/',
      'max-keys': String(ctx.pageSize),
      prefix,
      ...(token !== undefined && { 'continuation-token': token }),
    };
    const reply = await send(ctx, 'GET', '', query, {}, signal, c);
    if (reply.statusCode !== 200) throw await replyError(ctx, reply, c);
    let xml: string;
    try {
      xml = await readText(
        reply,
        MAX_LIST_BYTES,
        `source ${JSON.stringify(ctx.opts.name)}: list ${JSON.stringify(relDir)}`,
      );
    } catch (err) {
      throw classifyHttpError(err, c);
    }
    const parsed = parseListObjects(xml);
    addPage(ctx, out, parsed, prefix, relDir);
    if (!parsed.truncated) return out;
    if (parsed.nextToken === undefined) {
      throw new TransientError(
        'POLLER_S3_BAD_LISTING',
        `source ${JSON.stringify(ctx.opts.name)}: a truncated ListObjectsV2 page without NextContinuationToken; will retry`,
      );
    }
    token = parsed.nextToken;
  }
  out.truncated = true;
  return out;
}

/** The directories and files of one page that sit directly under `prefix`. */
function addPage(
  ctx: S3Context,
  out: Listing,
  parsed: ReturnType<typeof parseListObjects>,
  prefix: string,
  relDir: string,
): void {
  for (const p of parsed.prefixes) {
    const name = p.slice(prefix.length).replace(/\/$/, '');
    if (name === '' || name.includes('/')) continue;
    out.push({
      path: relDir === '' ? name : `${relDir}/${name}`,
      name,
      type: 'dir',
      sizeBytes: 0,
      mtimeMs: 0,
      mtimePrecision: 's',
    });
  }
  for (const o of parsed.objects) {
    const name = o.key.slice(prefix.length);
    // "Directory marker" objects (key ending in '/') and keys outside the prefix are not files.
    if (!o.key.startsWith(prefix) || name === '' || name.includes('/')) continue;
    const rel = relDir === '' ? name : `${relDir}/${name}`;
    if (o.etag !== undefined) ctx.etags.set(rel, o.etag);
    out.push({
      path: rel,
      name,
      type: 'file',
      sizeBytes: o.sizeBytes,
      mtimeMs: o.mtimeMs,
      mtimePrecision: 'ms',
      // The version key with the size (multipart ETags, "<md5>-<parts>", included).
      ...(o.etag !== undefined && { etag: o.etag }),
    });
  }
}

async function download(ctx: S3Context, remotePath: string, to: Writable, dl: DownloadOptions): Promise<void> {
  ctx.stats.gets++;
  const rel = remotePath.replace(/^\/+/, '');
  const c = errorContext(ctx, 'download', rel);
  const offset = Math.max(0, Math.floor(dl.offsetBytes));
  const extra: Record<string, string> = {};
  if (offset > 0) {
    extra['range'] = `bytes=${offset}-`;
    // S3 answers a mismatch with 412 rather than the whole object (If-Range is not supported).
    const etag = dl.expect?.etag ?? ctx.etags.get(rel);
    if (etag !== undefined) extra['if-match'] = etag;
    else if (dl.expect) extra['if-unmodified-since'] = new Date(dl.expect.mtimeMs).toUTCString();
  }
  const reply = await send(ctx, 'GET', keyOf(ctx, rel), {}, extra, dl.signal, c);
  const status = reply.statusCode;
  if (status === 412) {
    await discard(reply);
    throw changed(ctx, rel, 'it changed since it was listed');
  }
  if (status !== 200 && status !== 206) throw await replyError(ctx, reply, c);
  try {
    checkVersion(ctx, reply, rel, offset, dl);
  } catch (err) {
    await discard(reply);
    throw err;
  }
  try {
    const got = await streamBody(reply, to, dl.onBytes);
    const length = header(reply, 'content-length');
    if (length !== undefined && got !== Number(length)) {
      throw new TransientError(
        'POLLER_S3_CONNECTION_LOST',
        `source ${JSON.stringify(ctx.opts.name)}: download ${JSON.stringify(rel)}: body ended at ${got} of ${length} bytes; will resume`,
      );
    }
  } catch (err) {
    if (isDestinationError(err)) throw err;
    if (dl.signal.aborted) throw dl.signal.reason;
    throw classifyHttpError(err, c);
  }
}

/** Throws ChangedError when the reply is not the version the listing saw (or not the asked range). */
function checkVersion(ctx: S3Context, reply: HttpReply, rel: string, offset: number, dl: DownloadOptions): void {
  if (offset > 0 && reply.statusCode !== 206) throw changed(ctx, rel, 'the server sent the whole object to a resume');
  const replyEtag = header(reply, 'etag');
  if (dl.expect?.etag !== undefined && replyEtag !== undefined && replyEtag !== dl.expect.etag) {
    // Overwritten since it was listed: these bytes are not the version the ledger recorded.
    throw changed(ctx, rel, 'its ETag differs from the listed version');
  }
  const length = header(reply, 'content-length');
  const expected = dl.expect ? dl.expect.sizeBytes - offset : undefined;
  if (length !== undefined && expected !== undefined && Number(length) !== expected) {
    throw changed(ctx, rel, `the server sends ${length} bytes where the listing makes ${expected}`);
  }
}

async function stat(ctx: S3Context, remotePath: string, signal: AbortSignal): Promise<RemoteEntry | undefined> {
  const rel = remotePath.replace(/^\/+/, '');
  const c = errorContext(ctx, 'head', rel);
  const reply = await send(ctx, 'HEAD', keyOf(ctx, rel), {}, {}, signal, c);
  await discard(reply);
  if (reply.statusCode === 404) return undefined;
  if (reply.statusCode !== 200) throw statusError(reply.statusCode, c, header(reply, 'retry-after'));
  const lm = Date.parse(header(reply, 'last-modified') ?? '');
  return {
    path: rel,
    name: rel.slice(rel.lastIndexOf('/') + 1),
    type: 'file',
    sizeBytes: Number(header(reply, 'content-length') ?? 0),
    mtimeMs: Number.isFinite(lm) ? lm : 0,
    mtimePrecision: 's',
  };
}

async function remove(ctx: S3Context, remotePath: string, signal: AbortSignal): Promise<void> {
  ctx.stats.deletes++;
  const rel = remotePath.replace(/^\/+/, '');
  const c = errorContext(ctx, 'remove', rel);
  const reply = await send(ctx, 'DELETE', keyOf(ctx, rel), {}, {}, signal, c);
  if (reply.statusCode !== 204 && reply.statusCode !== 200) throw await replyError(ctx, reply, c);
  await discard(reply);
  ctx.etags.delete(rel);
}

function changed(ctx: S3Context, rel: string, why: string): PollerError {
  return new ChangedError(
    'POLLER_S3_CHANGED',
    `source ${JSON.stringify(ctx.opts.name)}: download ${JSON.stringify(rel)}: ${why}; fetched again once it is stable`,
  );
}
