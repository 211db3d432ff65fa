/**
 * The optional HTTP endpoint: probes and scrapes (`/healthz`, `/readyz`, `/metrics`) and the
 * operators' status page (`/`, `/api/status`, `/api/why`). node:http only; every answer is
 * read-only. With `auth` set, everything but the two probes needs the basic-auth password or the
 * bearer token.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ConfigError, coerceError } from '../errors.js';
import type { HealthReport } from './health.js';
import type { Metrics } from './metrics.js';

/**
 * What the status page and its API are served from (src/status/ builds them from the ledger, so
 * this server needs neither); absent: `/` and `/api/*` answer 404.
 */
export interface StatusPageOptions {
  /** The status document, fresh on each call. */
  report: () => Promise<unknown>;
  /** The page for a fresh report, and the Content-Security-Policy that lets its inline parts with `nonce` run. */
  page: (nonce: string) => Promise<{ html: string; csp: string }>;
  /** The `poller why` text of a remote path (in one source, or in each that could have it). */
  why: (path: string, source: string | undefined) => Promise<string>;
}

/** The CSP of every answer but the page (JSON, text): nothing may load, nothing may frame it. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/** Credentials a request must show (either one will do); the values come from files, never the config text. */
export interface HttpAuth {
  basic?: { user: string; password: string };
  /** Bearer token (named `token` so the logger's redaction covers it). */
  token?: string;
}

export interface HttpServerOptions {
  /** Address to bind; `127.0.0.1` keeps it local, `0.0.0.0` exposes it to a scraper. */
  host: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  metrics: Pick<Metrics, 'render' | 'contentType'>;
  /** Called on each probe; may be async (a ledger ping). A throw answers 503. */
  health: () => HealthReport | Promise<HealthReport>;
  status?: StatusPageOptions;
  auth?: HttpAuth;
  log: Logger;
  /** Aborting closes the server. */
  signal: AbortSignal;
}

export interface HttpServerHandle {
  /** The bound port (the real one when 0 was asked). */
  port: number;
  /** Stop listening and drop open connections. Idempotent. */
  close(): Promise<void>;
}

// A probe or scrape that has not sent its headers in this time is a stuck client, not a slow one.
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * Start the probe and metrics server; resolves once it listens.
 *
 * @throws ConfigError when the address cannot be bound (port in use, not permitted).
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const { log, signal } = options;
  signal.throwIfAborted();

  const server = createServer((req, res) => {
    handle(req, res, options).catch((thrown: unknown) => {
      log.error({ err: coerceError(thrown), event: 'http.failed', url: req.url }, 'http handler failed');
      if (!res.headersSent) sendJson(res, 500, { status: 'error' });
      else res.destroy();
    });
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL') {
        reject(
          new ConfigError(
            [`http: cannot listen on ${options.host}:${options.port} (${err.code}); choose another host or port`],
            { cause: err },
          ),
        );
      } else {
        reject(err);
      }
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options.port, options.host);
  });

  server.on('error', (err) => log.error({ err, event: 'http.failed' }, 'http server error'));
  const port = (server.address() as AddressInfo).port;
  log.info({ event: 'http.listening', host: options.host, port }, 'http listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      signal.removeEventListener('abort', onAbort);
      server.close(() => resolve());
      // Keep-alive connections from a scraper would hold close() open until they idle out.
      server.closeAllConnections();
    });
    return closing;
  };
  const onAbort = () => {
    void close();
  };
  signal.addEventListener('abort', onAbort, { once: true });

  return { port, close };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: HttpServerOptions): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    sendJson(res, 405, { status: 'method_not_allowed' });
    return;
  }
  const url = new URL(req.url ?? '/', 'http://localhost');
  const pathname = url.pathname;
  if (pathname !== '/healthz' && pathname !== '/readyz' && options.auth && !isAuthorised(req, options.auth)) {
    res.setHeader('WWW-Authenticate', options.auth.basic ? 'Basic realm="poller", charset="UTF-8"' : 'Bearer');
    sendJson(res, 401, { status: 'unauthorised' });
    return;
  }
  const served = (await serveProbe(pathname, req, res, options)) || (await serveStatus(url, req, res, options.status));
  if (!served) sendJson(res, 404, { status: 'not_found' });
}

/** `/healthz`, `/readyz` and `/metrics`; false for any other path. */
async function serveProbe(
  pathname: string,
  req: IncomingMessage,
  res: ServerResponse,
  options: HttpServerOptions,
): Promise<boolean> {
  switch (pathname) {
    case '/healthz': {
      const report = await probe(options);
      // Degraded is still alive (200): a lagging event sink must not get the process restarted.
      if (report.live && report.degraded?.length) sendJson(res, 200, { status: 'degraded', degraded: report.degraded });
      else if (report.live) sendJson(res, 200, { status: 'ok' });
      else sendJson(res, 503, { status: 'down', problems: report.problems ?? [] });
      return true;
    }
    case '/readyz': {
      const report = await probe(options);
      if (!report.live) {
        sendJson(res, 503, { status: 'down', problems: report.problems ?? [], unready: report.readiness.unready });
      } else if (!report.readiness.ready) {
        sendJson(res, 503, { status: 'unready', unready: report.readiness.unready });
      } else {
        sendJson(res, 200, { status: 'ready' });
      }
      return true;
    }
    case '/metrics': {
      const body = await options.metrics.render();
      res.writeHead(200, { 'Content-Type': options.metrics.contentType, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    }
  }
  return false;
}

/** The status page, `/api/status` and `/api/why`; false for any other path or without a status page. */
async function serveStatus(
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
  status: StatusPageOptions | undefined,
): Promise<boolean> {
  if (!status) return false;
  switch (url.pathname) {
    case '/':
    case '/index.html': {
      const nonce = randomBytes(16).toString('base64');
      const { html, csp } = await status.page(nonce);
      sendText(res, req, html, 'text/html; charset=utf-8', csp);
      return true;
    }
    case '/api/status':
      sendJson(res, 200, await status.report());
      return true;
    case '/api/why': {
      const path = url.searchParams.get('path');
      if (!path) {
        sendJson(res, 400, {
          status: 'bad_request',
          message: 'give the remote path: /api/why?path=<path>[&source=<name>]',
        });
        return true;
      }
      const text = await status.why(path, url.searchParams.get('source') || undefined);
      sendText(res, req, text, 'text/plain; charset=utf-8', API_CSP);
      return true;
    }
  }
  return false;
}

function sendText(res: ServerResponse, req: IncomingMessage, text: string, contentType: string, csp: string): void {
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    'Content-Security-Policy': csp,
  });
  res.end(req.method === 'HEAD' ? undefined : text);
}

/** On every answer: no caching, no sniffing, no framing, no referrer leaving the page. */
const SECURITY_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
} as const;

/** Constant-time comparison; a length difference is no secret (the lengths are fixed per config). */
function same(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function isAuthorised(req: IncomingMessage, auth: HttpAuth): boolean {
  const header = req.headers.authorization ?? '';
  const space = header.indexOf(' ');
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer' && auth.token !== undefined) return same(value, auth.token);
  if (scheme === 'basic' && auth.basic) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    // Both halves are always compared, so a wrong user name takes as long as a wrong password.
    const userOk = same(decoded.slice(0, colon), auth.basic.user);
    const passwordOk = same(decoded.slice(colon + 1), auth.basic.password);
    return userOk && passwordOk;
  }
  return false;
}

/** A health callback that throws is itself a liveness problem, reported rather than crashing. */
async function probe(options: HttpServerOptions): Promise<HealthReport> {
  try {
    return await options.health();
  } catch (thrown) {
    const err = coerceError(thrown);
    options.log.warn({ err, event: 'health.failed' }, 'health check failed');
    return { live: false, problems: [`health check failed: ${err.message}`], readiness: { ready: false, unready: [] } };
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Content-Security-Policy': API_CSP,
  });
  res.end(text);
}
