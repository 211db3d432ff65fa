/**
 * One keep-alive connection pool per origin (undici Pool), with TLS verified unless the source
 * says `insecure`, and the body helpers both HTTP and S3 sources use: read a bounded text body,
 * stream a body into the caller's stream without ending it.
 */

import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { buildConnector, Dispatcher } from 'undici';
import { Pool } from 'undici';
import { TransientError } from '../../errors.js';
import { ForwardingWritable } from '../forwarding-writable.js';
import { proxyFor } from '../proxy/source-proxy.js';
import { proxyConnector } from '../proxy/undici-connector.js';
import type { SourceConnectOptions } from '../source.js';

/** Idle keep-alive sockets are kept this long: a poll every minute reuses its connections. */
const KEEP_ALIVE_MS = 60_000;

export type HttpReply = Dispatcher.ResponseData;

/**
 * The pool of one origin; through the source's proxy (or the environment's: HTTPS_PROXY for
 * https, HTTP_PROXY for http, NO_PROXY) when one applies, every connection tunnelled.
 */
export function createPool(origin: string, opts: SourceConnectOptions): Pool {
  const url = new URL(origin);
  const scheme = url.protocol.slice(0, -1);
  const port = Number(url.port) || (scheme === 'https' ? 443 : 80);
  const tls = {
    timeout: opts.connectTimeoutMs,
    rejectUnauthorized: !opts.tls.insecure,
    ...(opts.tls.ca !== undefined && { ca: opts.tls.ca }),
  };
  let connect: buildConnector.BuildOptions | buildConnector.connector = tls;
  try {
    const proxy = proxyFor(opts, scheme, url.hostname.replace(/^\[(.*)\]$/, '$1'), port);
    if (proxy !== undefined) connect = proxyConnector(proxy, opts, tls);
  } catch (err) {
    // A proxy variable that does not parse fails every request of the source with its fix.
    connect = (_options, callback) => callback(err as Error, null);
  }
  return new Pool(origin, {
    connections: opts.maxConnections,
    keepAliveTimeout: KEEP_ALIVE_MS,
    keepAliveMaxTimeout: 10 * KEEP_ALIVE_MS,
    headersTimeout: opts.dataTimeoutMs,
    bodyTimeout: opts.dataTimeoutMs,
    connect,
  });
}

/** First value of a header. */
export function header(reply: Pick<HttpReply, 'headers'>, name: string): string | undefined {
  const v = reply.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a text body, refusing more than `maxBytes` (an index page or an S3 XML reply). */
export async function readText(reply: HttpReply, maxBytes: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of reply.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      reply.body.destroy();
      throw new TransientError('POLLER_HTTP_TOO_LARGE', `${what}: reply larger than ${maxBytes} bytes; not read`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Discards a body we do not use, so that its connection goes back to the pool. */
export async function discard(reply: HttpReply): Promise<void> {
  await reply.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
}

/**
 * Streams a reply body into `to` (left open), less its first `skipBytes`; resolves with the bytes
 * written once `to` accepted every one.
 */
export async function streamBody(
  reply: HttpReply,
  to: Writable,
  onBytes: ((n: number) => void) | undefined,
  skipBytes = 0,
): Promise<number> {
  let bytes = 0;
  let toSkip = skipBytes;
  const sink = new ForwardingWritable(to, (n) => {
    bytes += n;
    onBytes?.(n);
  });
  try {
    // The first `skipBytes` of the body are already in the partial (a server without ranges).
    const body =
      toSkip === 0
        ? reply.body
        : async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              if (toSkip >= chunk.length) {
                toSkip -= chunk.length;
                continue;
              }
              yield toSkip > 0 ? chunk.subarray(toSkip) : chunk;
              toSkip = 0;
            }
          };
    if (typeof body === 'function') await pipeline(reply.body, body, sink);
    else await pipeline(body, sink);
  } catch (err) {
    if (sink.destinationError !== undefined) throw markDestination(sink.destinationError);
    throw err;
  } finally {
    sink.detach();
  }
  if (sink.destinationError !== undefined) throw markDestination(sink.destinationError);
  return bytes;
}

const DESTINATION = Symbol('poller.http.destinationError');

/** Marks an error as the caller's stream's own (a full disk), so that it passes through unclassified. */
export function markDestination(err: Error): Error {
  (err as Error & { [DESTINATION]?: boolean })[DESTINATION] = true;
  return err;
}

/** True for an error of the caller's stream (a full disk): it passes through unclassified. */
export function isDestinationError(err: unknown): boolean {
  return err instanceof Error && (err as Error & { [DESTINATION]?: boolean })[DESTINATION] === true;
}

/** `/a b/ü` → `/a%20b/%C3%BC`, keeping the slashes. */
export function encodePath(p: string): string {
  return p
    .split('/')
    .map((seg) => encodeURIComponent(seg))
    .join('/');
}
