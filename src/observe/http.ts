/**
 * The optional HTTP endpoint for probes and scrapes: `/healthz`, `/readyz`, `/metrics`.
 * node:http only; it serves three read-only answers and nothing else.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ConfigError, coerceError } from '../errors.js';
import type { HealthReport } from './health.js';
import type { Metrics } from './metrics.js';

export interface HttpServerOptions {
  /** Address to bind; `127.0.0.1` keeps it local, `0.0.0.0` exposes it to a scraper. */
  host: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  metrics: Pick<Metrics, 'render' | 'contentType'>;
  /** Called on each probe; may be async (a ledger ping). A throw answers 503. */
  health: () => HealthReport | Promise<HealthReport>;
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
  const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
  switch (pathname) {
    case '/healthz': {
      const report = await probe(options);
      // Degraded is still alive (200): a lagging event sink must not get the process restarted.
      if (report.live && report.degraded?.length) sendJson(res, 200, { status: 'degraded', degraded: report.degraded });
      else if (report.live) sendJson(res, 200, { status: 'ok' });
      else sendJson(res, 503, { status: 'down', problems: report.problems ?? [] });
      return;
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
      return;
    }
    case '/metrics': {
      const body = await options.metrics.render();
      res.writeHead(200, { 'Content-Type': options.metrics.contentType, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    default:
      sendJson(res, 404, { status: 'not_found' });
  }
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
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}
