import {
  NotFoundError,
  PermanentError,
  type PollerError,
  SourceError,
  ThrottledError,
  TransientError,
} from '../../errors.js';

/**
 * The one place where ssh2's errors become ours. Decisions are made on SFTP status codes,
 * ssh2's `level` and Node's system error codes, never on message text; the original error is
 * kept as `cause`.
 */

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7), as ssh2 sets them on `err.code`. */
const SFTP_STATUS = {
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

/** What was being done when the error appeared, for the message. */
export interface SftpErrorContext {
  /** The source's name from the config. */
  source: string;
  /** `host:port`, for connection errors. */
  hostPort: string;
  /** The remote path the operation was about, when there is one. */
  path?: string;
  /** Password and passphrase: scrubbed from any foreign text put into a message. */
  secrets?: readonly (string | undefined)[];
}

function foreignMessage(err: unknown, secrets: readonly (string | undefined)[] | undefined): string {
  let text = err instanceof Error ? err.message : String(err);
  for (const s of secrets ?? []) if (s !== undefined && s.length > 0) text = text.split(s).join('***');
  return text.replace(/\s+/g, ' ').trim();
}

function subject(ctx: SftpErrorContext): string {
  return ctx.path === undefined ? `sftp source "${ctx.source}"` : `sftp source "${ctx.source}": ${ctx.path}`;
}

/** Is this ssh2's end-of-file status (a read or readdir past the end)? */
export function isSftpEof(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === SFTP_STATUS.EOF;
}

/** Is this the SFTP "no such file" status? */
export function isSftpNoSuchFile(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === SFTP_STATUS.NO_SUCH_FILE;
}

/** An SFTP status code (the server answered the request) as one of our errors. */
function statusError(code: number, err: unknown, ctx: SftpErrorContext, what: string): PollerError {
  const cause = { cause: err };
  switch (code) {
    case SFTP_STATUS.NO_SUCH_FILE:
      return new NotFoundError('POLLER_SFTP_NOT_FOUND', `${what}: no such file or directory on the server`, cause);
    case SFTP_STATUS.PERMISSION_DENIED:
      return new PermanentError(
        'POLLER_SFTP_PERMISSION_DENIED',
        `${what}: permission denied by the server; grant the user "read" on it or exclude it`,
        cause,
      );
    case SFTP_STATUS.OP_UNSUPPORTED:
      return new PermanentError(
        'POLLER_SFTP_UNSUPPORTED',
        `${what}: the server does not support this operation`,
        cause,
      );
    case SFTP_STATUS.NO_CONNECTION:
    case SFTP_STATUS.CONNECTION_LOST:
      return new TransientError('POLLER_SFTP_CONNECTION_LOST', `${what}: connection lost; will retry`, cause);
    default:
      // FAILURE and BAD_MESSAGE say nothing about the cause; retries are bounded upstream.
      return new TransientError(
        'POLLER_SFTP_FAILURE',
        `${what}: server reported failure (${foreignMessage(err, ctx.secrets)}); will retry`,
        cause,
      );
  }
}

/** Classifies any error from ssh2 (connection, channel or SFTP request) into our catalogue. */
export function classifySftpError(err: unknown, ctx: SftpErrorContext): PollerError {
  if (err instanceof TransientError || err instanceof PermanentError || err instanceof SourceError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const level = (err as { level?: unknown } | null)?.level;
  const cause = { cause: err };
  const what = subject(ctx);

  if (typeof code === 'number') return statusError(code, err, ctx, what);
  if (level === 'client-authentication') {
    return new SourceError(
      'POLLER_SFTP_AUTH_REJECTED',
      `sftp source "${ctx.source}": ${ctx.hostPort} rejected the login; check the user, password or private key`,
      cause,
    );
  }
  if (level === 'client-timeout') {
    return new TransientError(
      'POLLER_SFTP_CONNECT_TIMEOUT',
      `sftp source "${ctx.source}": ${ctx.hostPort} did not complete the SSH handshake in time; will retry (raise connectTimeout if the link is slow)`,
      cause,
    );
  }
  if (level === 'client-dns' || code === 'ENOTFOUND') {
    return new SourceError(
      'POLLER_SFTP_HOST_NOT_FOUND',
      `sftp source "${ctx.source}": host ${ctx.hostPort} not found in DNS; check the host name in the url`,
      cause,
    );
  }
  if (code === 'ECONNREFUSED') {
    return new SourceError(
      'POLLER_SFTP_CONNECTION_REFUSED',
      `sftp source "${ctx.source}": ${ctx.hostPort} refused the connection; check the port and that sshd runs`,
      cause,
    );
  }
  if (level === 'handshake') {
    return new SourceError(
      'POLLER_SFTP_HANDSHAKE_FAILED',
      `sftp source "${ctx.source}": SSH handshake with ${ctx.hostPort} failed (${foreignMessage(err, ctx.secrets)}); check the server's algorithms`,
      cause,
    );
  }
  if (typeof code === 'string' && /^(ETIMEDOUT|ESOCKETTIMEDOUT)$/.test(code)) {
    return new TransientError(
      'POLLER_SFTP_TIMEOUT',
      `${what}: timed out talking to ${ctx.hostPort}; will retry`,
      cause,
    );
  }
  // Resets, pipes, unreachable networks, "No response from server" after a dropped socket.
  return new TransientError(
    'POLLER_SFTP_CONNECTION_LOST',
    `${what}: connection to ${ctx.hostPort} lost (${foreignMessage(err, ctx.secrets)}); will retry`,
    cause,
  );
}

/** Neither `hostKey` nor `knownHosts` configured, and not `insecure`. */
export function hostKeyNotConfiguredError(source: string): SourceError {
  return new SourceError(
    'POLLER_SFTP_HOSTKEY_NOT_CONFIGURED',
    `sftp source "${source}": no way to verify the server's host key; set hostKey (e.g. the SHA256:... of ssh-keygen -lf) or knownHosts, or insecure: true to skip the check`,
  );
}

/** The configured `hostKey` is not a SHA-256 fingerprint. */
export function hostKeyInvalidError(source: string): SourceError {
  return new SourceError(
    'POLLER_SFTP_HOSTKEY_INVALID',
    `sftp source "${source}": hostKey is not a SHA-256 fingerprint; write it as "SHA256:<base64>" (ssh-keygen -lf) or 64 hex digits`,
  );
}

/** The server presented a key other than the pinned or known one. */
export function hostKeyMismatchError(
  source: string,
  hostPort: string,
  fingerprint: string,
  revoked: boolean,
): SourceError {
  const why = revoked ? 'a key marked @revoked in knownHosts' : 'a host key that does not match';
  return new SourceError(
    'POLLER_SFTP_HOSTKEY_MISMATCH',
    `sftp source "${source}": ${hostPort} presented ${why} (${fingerprint}); if the server's key really changed, update hostKey or knownHosts`,
  );
}

/** known_hosts has no entry for the host. */
export function hostKeyUnknownError(source: string, hostPort: string, fingerprint: string): SourceError {
  return new SourceError(
    'POLLER_SFTP_HOSTKEY_UNKNOWN',
    `sftp source "${source}": ${hostPort} is not in knownHosts (its key is ${fingerprint}); add it (ssh-keyscan) or set hostKey`,
  );
}

/** known_hosts could not be read. */
export function knownHostsUnreadableError(source: string, file: string, cause: unknown): SourceError {
  const code = (cause as { code?: unknown } | null)?.code;
  return new SourceError(
    'POLLER_SFTP_KNOWN_HOSTS_UNREADABLE',
    `sftp source "${source}": cannot read knownHosts file ${file}${typeof code === 'string' ? ` (${code})` : ''}; check the path and its permissions`,
    { cause },
  );
}

/** The private key does not parse (wrong format or wrong passphrase). */
export function privateKeyUnreadableError(source: string, cause: unknown): SourceError {
  return new SourceError(
    'POLLER_SFTP_KEY_UNREADABLE',
    `sftp source "${source}": the private key cannot be used (wrong passphrase or unsupported format); check privateKey and passphrase`,
    { cause },
  );
}

/** The server refused to open another channel or session. */
export function channelRefusedError(source: string, hostPort: string, cause: unknown): ThrottledError {
  return new ThrottledError(
    'POLLER_SFTP_CHANNEL_REFUSED',
    `sftp source "${source}": ${hostPort} refused an SFTP session (too many sessions?); lower maxConnections`,
    { cause },
  );
}

/**
 * The server closed the connection before the SSH handshake finished. sshd does that when
 * MaxStartups (unauthenticated connections) is exceeded: throttling, not a broken source.
 */
export function droppedBeforeHandshakeError(source: string, hostPort: string, cause: unknown): ThrottledError {
  return new ThrottledError(
    'POLLER_SFTP_DROPPED_BEFORE_HANDSHAKE',
    `sftp source "${source}": ${hostPort} closed the connection before the SSH handshake (busy server, MaxStartups?); will retry, lower maxConnections if it persists`,
    { cause },
  );
}
