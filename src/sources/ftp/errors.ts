/**
 * The one place where basic-ftp and socket errors become poller errors. Above this module nobody
 * looks at FTP reply codes or error messages.
 */
import { FTPError } from 'basic-ftp';
import {
  NotFoundError,
  PermanentError,
  PollerError,
  SourceError,
  ThrottledError,
  TransientError,
} from '../../errors.js';

/** What was being done when the error appeared; named in the message. */
export type FtpOperation = 'connect' | 'login' | 'list' | 'download' | 'stat' | 'remove' | 'rename' | 'check';

export interface FtpErrorContext {
  /** Source name from the config. */
  source: string;
  operation: FtpOperation;
  /** Remote path relative to the source root, when there is one. */
  path?: string;
  /** host:port, named in connection errors. */
  address?: string;
  /** Removed from every message, in case a server echoes it. */
  password?: string;
}

/** Node's certificate verification codes (OpenSSL names). */
const CERT_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Socket errors that mean "try again later". */
const TRANSIENT_SOCKET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** Reply texts of servers at their connection limit. */
const TOO_MANY = /too many (connections|users|clients|sessions|logins)|maximum number of (clients|connections|users)/i;

/** Marks an error we raised ourselves for a timeout we enforce (connect timeout). */
export class FtpTimeoutError extends Error {
  override readonly name = 'FtpTimeoutError';
}

/** Raised when the server's certificate does not match the pinned SHA-256 fingerprint. */
export class FingerprintMismatchError extends Error {
  override readonly name = 'FingerprintMismatchError';
  readonly code = 'POLLER_FTP_FINGERPRINT_MISMATCH';
  readonly actual: string;
  constructor(actual: string) {
    super(`server certificate SHA-256 fingerprint is ${actual}`);
    this.actual = actual;
  }
}

const LOCAL_ERROR = Symbol('poller.ftp.localError');

/** Marks an error of the caller's destination stream (a full disk): it passes through unclassified. */
export function markLocalError(err: Error): Error {
  (err as Error & { [LOCAL_ERROR]?: boolean })[LOCAL_ERROR] = true;
  return err;
}

/** True for an error raised by the caller's destination stream during a download. */
export function isLocalError(err: unknown): boolean {
  return err instanceof Error && (err as Error & { [LOCAL_ERROR]?: boolean })[LOCAL_ERROR] === true;
}

/** True when basic-ftp keeps the connection usable after this error (an FTP reply with a 4xx/5xx code). */
export function isConnectionStillUsable(err: unknown): boolean {
  return err instanceof FTPError && err.code !== 421;
}

/**
 * Maps anything thrown by basic-ftp, a socket or TLS into TransientError / ThrottledError /
 * PermanentError / SourceError, with the original as `cause`. Poller errors pass through.
 */
export function classifyFtpError(err: unknown, ctx: FtpErrorContext): PollerError {
  if (err instanceof PollerError) return err;
  const what = describeOperation(ctx);
  const clean = (text: string): string => oneLine(redact(text, ctx.password));

  if (err instanceof FTPError) return classifyReply(err, ctx, what, clean);
  return classifyFailure(err, ctx, what, clean);
}

/** A 4xx/5xx reply of the server. */
function classifyReply(
  err: FTPError,
  ctx: FtpErrorContext,
  what: string,
  clean: (text: string) => string,
): PollerError {
  const reply = clean(err.message);
  const code = err.code;
  // Some servers refuse with 530 "too many users" instead of 421.
  if (code === 421 || TOO_MANY.test(err.message)) {
    return new ThrottledError(
      'POLLER_FTP_THROTTLED',
      `${what}: server refused a connection (${reply}); using fewer connections for a while, lower maxConnections if this persists`,
      { cause: err },
    );
  }
  if (code === 530 || code === 331 || code === 332) {
    return new SourceError(
      'POLLER_FTP_LOGIN_REJECTED',
      `${what}: login rejected (${reply}); check the user and password of the source`,
      { cause: err },
    );
  }
  if (code === 534 || code === 522 || (code === 502 && ctx.operation === 'connect')) {
    return new SourceError(
      'POLLER_FTP_TLS_REFUSED',
      `${what}: server refused TLS (${reply}); check the tls mode of the source (explicit, implicit or none)`,
      { cause: err },
    );
  }
  if (code >= 400 && code < 500) {
    return new TransientError('POLLER_FTP_REPLY_TRANSIENT', `${what}: server replied ${reply}; will retry`, {
      cause: err,
    });
  }
  if (code === 550 || code === 551 || code === 553) {
    return new NotFoundError(
      'POLLER_FTP_NOT_AVAILABLE',
      `${what}: server replied ${reply}; the path does not exist or is not readable by this user`,
      { cause: err },
    );
  }
  if (ctx.operation === 'connect' || ctx.operation === 'login') {
    return new SourceError(
      'POLLER_FTP_CONNECT_REJECTED',
      `${what}: server replied ${reply}; check the source settings`,
      {
        cause: err,
      },
    );
  }
  return new PermanentError('POLLER_FTP_REPLY_PERMANENT', `${what}: server replied ${reply}`, { cause: err });
}

/** A socket, TLS or timeout failure (no reply to go by). */
function classifyFailure(
  err: unknown,
  ctx: FtpErrorContext,
  what: string,
  clean: (text: string) => string,
): PollerError {
  const error = err instanceof Error ? err : new Error(String(err));
  const rawCode = (error as { code?: unknown }).code;
  const code = typeof rawCode === 'string' ? rawCode : '';
  const message = clean(error.message);

  if (error instanceof FingerprintMismatchError) {
    return new SourceError(
      'POLLER_FTP_TLS_REJECTED',
      `${what}: ${message}, not the pinned fingerprint; check the source's fingerprint option (the server certificate may have been replaced)`,
      { cause: err },
    );
  }
  if (CERT_CODES.has(code) || /certificate|self[- ]signed/i.test(error.message)) {
    return new SourceError(
      'POLLER_FTP_TLS_REJECTED',
      `${what}: TLS verification failed (${code || message}); ${tlsHint(code)}`,
      { cause: err },
    );
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || /\bssl\b|\btls\b|handshake/i.test(error.message)) {
    return new SourceError(
      'POLLER_FTP_TLS_FAILED',
      `${what}: TLS handshake failed (${code || message}); check the tls mode: explicit starts TLS on the normal FTP port, implicit expects TLS from the first byte (usually port 990)`,
      { cause: err },
    );
  }
  if (code === 'ENOTFOUND') {
    return new SourceError(
      'POLLER_FTP_HOST_UNKNOWN',
      `${what}: host not found; check the host name in the source URL`,
      {
        cause: err,
      },
    );
  }
  if (code === 'ECONNREFUSED' && ctx.operation !== 'connect') {
    // Refused on a data connection of a session that is up (a passive port closed under us):
    // the server is there, so the transfer is retried rather than the source paused.
    return new TransientError('POLLER_FTP_DATA_REFUSED', `${what}: the data connection was refused; will retry`, {
      cause: err,
    });
  }
  if (code === 'ECONNREFUSED') {
    return new SourceError(
      'POLLER_FTP_CONNECTION_REFUSED',
      `${what}: connection refused; check the host and port in the source URL and that the server is running`,
      { cause: err },
    );
  }
  if (error instanceof FtpTimeoutError || /^Timeout\b|timed? ?out/i.test(error.message)) {
    return new TransientError(
      'POLLER_FTP_TIMEOUT',
      `${what}: ${message}; will retry (raise the timeout if the server is slow)`,
      {
        cause: err,
      },
    );
  }
  if (TRANSIENT_SOCKET_CODES.has(code) || isConnectionLostMessage(error.message)) {
    return new TransientError(
      'POLLER_FTP_CONNECTION_LOST',
      `${what}: connection lost (${code || message}); will retry`,
      {
        cause: err,
      },
    );
  }
  // Unknown failures are retried: a bounded retry costs little, a wrongly failed file costs data.
  return new TransientError('POLLER_FTP_FAILED', `${what}: ${message}`, { cause: err });
}

function isConnectionLostMessage(message: string): boolean {
  return /closed|FIN packet|transmission error|data connection|socket hang up/i.test(message);
}

function describeOperation(ctx: FtpErrorContext): string {
  const where = ctx.path !== undefined ? ` ${JSON.stringify(ctx.path)}` : ctx.address ? ` ${ctx.address}` : '';
  return `source ${JSON.stringify(ctx.source)}: ${ctx.operation}${where}`;
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** Removes a password from text a server or library produced. */
export function redact(text: string, password: string | undefined): string {
  if (!password) return text;
  return text.split(password).join('***');
}

/** The fix for a certificate the client refused, by Node's verification code. */
function tlsHint(code: string): string {
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return "the server certificate is outside its validity dates: renew it on the server, or check this host's clock";
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return "the certificate is not issued for this host name: use the name it was issued for in the URL, or pin the source's fingerprint";
  }
  return "set the source's ca option to the CA that signed the server certificate, or pin its fingerprint";
}
