/**
 * The one place where HTTP statuses and undici/socket errors become poller errors (shared by the
 * HTTP and S3 sources). 401/403 pause the source; 404/410 fail the file; 429 and 503 with
 * Retry-After throttle; other 5xx and broken connections are retried.
 */
import {
  NotFoundError,
  PermanentError,
  PollerError,
  SourceError,
  ThrottledError,
  TransientError,
} from '../../errors.js';

export type HttpOperation = 'list' | 'head' | 'download' | 'remove' | 'check';

export interface HttpErrorContext {
  source: string;
  operation: HttpOperation;
  path?: string;
  /** 'HTTP' or 'S3': the code area and the wording. */
  area: 'HTTP' | 'S3';
}

/** A ThrottledError that says how long the server asked us to wait. */
export class RetryAfterError extends ThrottledError {
  constructor(code: string, message: string, retryAfterMs: number | undefined) {
    super(code, message, { retryAfterMs });
  }
}

const CERT_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Codes per area, written out so that the error catalogue test finds each one. */
const CODES = {
  HTTP: {
    auth: 'POLLER_HTTP_AUTH_REJECTED',
    notFound: 'POLLER_HTTP_NOT_FOUND',
    throttled: 'POLLER_HTTP_THROTTLED',
    server: 'POLLER_HTTP_SERVER_ERROR',
    refused: 'POLLER_HTTP_REFUSED',
    tls: 'POLLER_HTTP_TLS_REJECTED',
    host: 'POLLER_HTTP_HOST_UNKNOWN',
    connRefused: 'POLLER_HTTP_CONNECTION_REFUSED',
    lost: 'POLLER_HTTP_CONNECTION_LOST',
  },
  S3: {
    auth: 'POLLER_S3_AUTH_REJECTED',
    notFound: 'POLLER_S3_NOT_FOUND',
    throttled: 'POLLER_S3_THROTTLED',
    server: 'POLLER_S3_SERVER_ERROR',
    refused: 'POLLER_S3_REFUSED',
    tls: 'POLLER_S3_TLS_REJECTED',
    host: 'POLLER_S3_HOST_UNKNOWN',
    connRefused: 'POLLER_S3_CONNECTION_REFUSED',
    lost: 'POLLER_S3_CONNECTION_LOST',
  },
} as const;

function what(ctx: HttpErrorContext): string {
  return `source ${JSON.stringify(ctx.source)}: ${ctx.operation}${ctx.path !== undefined ? ` ${JSON.stringify(ctx.path)}` : ''}`;
}

/** Seconds or an HTTP date, as Retry-After allows; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

/**
 * An error for a reply status we do not accept. `detail` is a short server error code (S3's
 * `<Code>`), never a body: bodies may echo request headers.
 */
export function statusError(status: number, ctx: HttpErrorContext, retryAfter?: string, detail?: string): PollerError {
  const w = what(ctx);
  const a = ctx.area;
  const shown = detail ? `${status} ${detail}` : String(status);
  if (status === 401 || status === 403) {
    return new SourceError(
      CODES[a].auth,
      `${w}: server replied ${shown}; check the credentials of the source (${a === 'S3' ? 'access key, secret, bucket policy' : 'user + passwordFile, or bearerTokenFile'})`,
    );
  }
  if (status === 404 || status === 410) {
    return new NotFoundError(CODES[a].notFound, `${w}: server replied ${shown}; the path does not exist (any more)`);
  }
  if (status === 429 || (status === 503 && retryAfter !== undefined)) {
    const ms = parseRetryAfter(retryAfter);
    return new RetryAfterError(
      CODES[a].throttled,
      `${w}: server replied ${shown}${ms !== undefined ? ` (retry after ${Math.ceil(ms / 1000)} s)` : ''}; backing off`,
      ms,
    );
  }
  if (status >= 500) {
    return new TransientError(CODES[a].server, `${w}: server replied ${shown}; will retry`);
  }
  return new PermanentError(CODES[a].refused, `${w}: server replied ${shown}`);
}

/** Maps anything undici or a socket throws into our classes. Poller errors pass through. */
export function classifyHttpError(err: unknown, ctx: HttpErrorContext): PollerError {
  if (err instanceof PollerError) return err;
  const error = err instanceof Error ? err : new Error(String(err));
  const raw = (error as { code?: unknown }).code ?? (error.cause as { code?: unknown } | undefined)?.code;
  const code = typeof raw === 'string' ? raw : '';
  const w = what(ctx);
  const a = ctx.area;
  if (CERT_CODES.has(code) || /certificate/i.test(error.message)) {
    return new SourceError(
      CODES[a].tls,
      `${w}: TLS verification failed (${code || error.message}); give the server's CA with \`ca\`, or \`insecure: true\` for a test server`,
      { cause: err },
    );
  }
  if (code === 'ENOTFOUND') {
    return new SourceError(CODES[a].host, `${w}: host not found; check the host in the source URL`, {
      cause: err,
    });
  }
  if (code === 'ECONNREFUSED') {
    return new SourceError(
      CODES[a].connRefused,
      `${w}: connection refused; check the host and port in the source URL and that the server is running`,
      { cause: err },
    );
  }
  // Resets, timeouts, a body cut short (UND_ERR_SOCKET, UND_ERR_*_TIMEOUT, ECONNRESET...): retry.
  return new TransientError(CODES[a].lost, `${w}: ${code || error.message}; will retry`, {
    cause: err,
  });
}
