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
import type { DownloadOptions, Listing, ListOptions, RemoteEntry, Source, SourceConnectOptions } from '../source.js';
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
  const keyPathPrefix = s3.forcePathStyle ? `/${s3.bucket}/` : '/';
  const pool = createPool(base.origin, opts);
  // The key prefix comes from the URL path as prepared (date templates cut off into the globs).
  const rootPrefix = opts.rootPath.replace(/^\/+/, '');
  const keyPrefix = rootPrefix === '' || rootPrefix.endsWith('/') ? rootPrefix : `${rootPrefix}/`;
  const pageSize = Math.max(1, Math.min(DEFAULT_PAGE_SIZE, opts.pageSize ?? DEFAULT_PAGE_SIZE));
  const etags = new CappedMap<string, string>(MAX_FILE_HINTS);
  const profile: CredentialProvider | undefined =
    s3.credentials === undefined && s3.instanceProfile !== undefined
      ? createInstanceProfileCredentials({
          source: opts.name,
          endpoint: s3.instanceProfile.endpoint ?? DEFAULT_IMDS_ENDPOINT,
        })
      : undefined;
  const stats: S3SourceStats = { listPages: 0, gets: 0, deletes: 0 };
  const displayUrl = `s3://${s3.bucket}/${keyPrefix}`;
  let closed = false;

  const ctx = (operation: HttpOperation, path?: string): HttpErrorContext => ({
    source: opts.name,
    operation,
    area: 'S3',
    ...(path !== undefined && { path }),
  });

  const keyOf = (rel: string): string => `${keyPrefix}${rel.replace(/^\/+/, '')}`;

  const send = async (
    method: 'GET' | 'HEAD' | 'DELETE',
    key: string,
    query: Record<string, string>,
    extra: Record<string, string>,
    signal: AbortSignal,
    c: HttpErrorContext,
  ): Promise<HttpReply> => {
    signal.throwIfAborted();
    const path =
      s3.forcePathStyle && key === '' ? `/${awsEncodePath(s3.bucket)}` : awsEncodePath(`${keyPathPrefix}${key}`);
    const credentials = s3.credentials ?? (await profile?.get(signal));
    const signed = credentials
      ? signRequest({
          method,
          host: base.host,
          encodedPath: path,
          query,
          region: s3.region,
          credentials,
          nowMs: Date.now(),
        })
      : {};
    const qs = canonicalQuery(query);
    try {
      return await pool.request({
        method,
        path: qs === '' ? path : `${path}?${qs}`,
        headers: { ...signed, ...extra },
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw classifyHttpError(err, c);
    }
  };

  /** An error for a reply we do not accept, with S3's error code from the XML body. */
  const replyError = async (reply: HttpReply, c: HttpErrorContext): Promise<PollerError> => {
    let code: string | undefined;
    if (reply.statusCode !== 304 && reply.statusCode !== 412) {
      code = xmlErrorCode(await readText(reply, 64 * 1024, 'S3 error').catch(() => ''));
    } else {
      await discard(reply);
    }
    if (code === 'NoSuchBucket') {
      return new SourceError(
        'POLLER_S3_NO_BUCKET',
        `source ${JSON.stringify(opts.name)}: bucket ${JSON.stringify(s3.bucket)} does not exist; check the bucket in the URL, endpoint and region`,
      );
    }
    if (code === 'SlowDown') {
      return new ThrottledError(
        'POLLER_S3_THROTTLED',
        `source ${JSON.stringify(opts.name)}: ${c.operation}: S3 asked to slow down; backing off`,
      );
    }
    return statusError(reply.statusCode, c, header(reply, 'retry-after'), code);
  };

  return {
    displayUrl,
    stats,

    async list(dir: string, listOpts: ListOptions): Promise<Listing> {
      const relDir = dir.replace(/^\/+|\/+$/g, '');
      const prefix = relDir === '' ? keyPrefix : `${keyPrefix}${relDir}/`;
      const c = ctx('list', relDir);
      const out: Listing = [];
      let token: string | undefined;
      for (let page = 0; page < MAX_PAGES; page++) {
        stats.listPages++;
        const query: Record<string, string> = {
          'list-type': '2',
          delimiter: '/',
          'max-keys': String(pageSize),
          prefix,
          ...(token !== undefined && { 'continuation-token': token }),
        };
        const reply = await send('GET', '', query, {}, listOpts.signal, c);
        if (reply.statusCode !== 200) throw await replyError(reply, c);
        let xml: string;
        try {
          xml = await readText(
            reply,
            MAX_LIST_BYTES,
            `source ${JSON.stringify(opts.name)}: list ${JSON.stringify(relDir)}`,
          );
        } catch (err) {
          throw classifyHttpError(err, c);
        }
        const parsed = parseListObjects(xml);
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
          if (o.etag !== undefined) etags.set(rel, o.etag);
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
        if (!parsed.truncated) return out;
        if (parsed.nextToken === undefined) {
          throw new TransientError(
            'POLLER_S3_BAD_LISTING',
            `source ${JSON.stringify(opts.name)}: a truncated ListObjectsV2 page without NextContinuationToken; will retry`,
          );
        }
        token = parsed.nextToken;
      }
      out.truncated = true;
      return out;
    },

    async download(remotePath: string, to: Writable, dl: DownloadOptions): Promise<void> {
      stats.gets++;
      const rel = remotePath.replace(/^\/+/, '');
      const c = ctx('download', rel);
      const offset = Math.max(0, Math.floor(dl.offsetBytes));
      const extra: Record<string, string> = {};
      if (offset > 0) {
        extra['range'] = `bytes=${offset}-`;
        // S3 answers a mismatch with 412 rather than the whole object (If-Range is not supported).
        const etag = dl.expect?.etag ?? etags.get(rel);
        if (etag !== undefined) extra['if-match'] = etag;
        else if (dl.expect) extra['if-unmodified-since'] = new Date(dl.expect.mtimeMs).toUTCString();
      }
      const reply = await send('GET', keyOf(rel), {}, extra, dl.signal, c);
      const status = reply.statusCode;
      if (status === 412) {
        await discard(reply);
        throw changed(rel, 'it changed since it was listed');
      }
      if (status !== 200 && status !== 206) throw await replyError(reply, c);
      try {
        if (offset > 0 && status !== 206) throw changed(rel, 'the server sent the whole object to a resume');
        const replyEtag = header(reply, 'etag');
        if (dl.expect?.etag !== undefined && replyEtag !== undefined && replyEtag !== dl.expect.etag) {
          // Overwritten since it was listed: these bytes are not the version the ledger recorded.
          throw changed(rel, 'its ETag differs from the listed version');
        }
        const length = header(reply, 'content-length');
        const expected = dl.expect ? dl.expect.sizeBytes - offset : undefined;
        if (length !== undefined && expected !== undefined && Number(length) !== expected) {
          throw changed(rel, `the server sends ${length} bytes where the listing makes ${expected}`);
        }
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
            `source ${JSON.stringify(opts.name)}: download ${JSON.stringify(rel)}: body ended at ${got} of ${length} bytes; will resume`,
          );
        }
      } catch (err) {
        if (isDestinationError(err)) throw err;
        if (dl.signal.aborted) throw dl.signal.reason;
        throw classifyHttpError(err, c);
      }
    },

    async stat(remotePath: string, statOpts: ListOptions): Promise<RemoteEntry | undefined> {
      const rel = remotePath.replace(/^\/+/, '');
      const c = ctx('head', rel);
      const reply = await send('HEAD', keyOf(rel), {}, {}, statOpts.signal, c);
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
    },

    async remove(remotePath: string, rmOpts: ListOptions): Promise<void> {
      stats.deletes++;
      const rel = remotePath.replace(/^\/+/, '');
      const c = ctx('remove', rel);
      const reply = await send('DELETE', keyOf(rel), {}, {}, rmOpts.signal, c);
      if (reply.statusCode !== 204 && reply.statusCode !== 200) throw await replyError(reply, c);
      await discard(reply);
      etags.delete(rel);
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await pool.close().catch(() => pool.destroy());
    },
  };

  function changed(rel: string, why: string): PollerError {
    return new ChangedError(
      'POLLER_S3_CHANGED',
      `source ${JSON.stringify(opts.name)}: download ${JSON.stringify(rel)}: ${why}; fetched again once it is stable`,
    );
  }
}
