/**
 * The error catalogue. Decisions (retry, fail the file, pause the source) are made on the
 * class (its kind) and `code`, never on message text: the engine decides a file's fate on
 * the class alone (ChangedError, NotFoundError, ...), and each source's classifier picks it. docs/errors.md lists every core code.
 */
export type ErrorCode = string; // core: POLLER_<AREA>_<WHAT>; plugins: <PLUGIN>_<WHAT>

export abstract class PollerError extends Error {
  abstract readonly retryable: boolean;
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Worth retrying the same file later: 4xx replies, resets, timeouts. */
export class TransientError extends PollerError {
  override readonly retryable = true;
}

/** Too many connections (FTP 421 and kin): use fewer connections for a while; not the file's fault. */
export class ThrottledError extends TransientError {
  /** How long the server asked us to wait (HTTP `Retry-After`), when it said. */
  readonly retryAfterMs: number | undefined;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { retryAfterMs?: number | undefined }) {
    super(code, message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * The remote file changed under the download (it grew, its validator moved, a newer version was
 * announced): not the file's fault, it is still being written. The claim is given back without
 * an attempt and the file settles again.
 */
export class ChangedError extends TransientError {}

/** Retrying will not help: 550 not found, 553, a corrupt file. The file fails. */
export class PermanentError extends PollerError {
  override readonly retryable = false;
}

/**
 * The remote path is not there (404, FTP 550, ENOENT): fetching it fails for good, and a delete or
 * move of it (`after:`) has nothing left to do.
 */
export class NotFoundError extends PermanentError {}

/** The source itself is unusable: 530 login, TLS failure, unknown host. Pause the source. */
export class SourceError extends PollerError {
  override readonly retryable = false;
}

/** Bad configuration; `issues` has one line per problem, with its path. */
export class ConfigError extends PollerError {
  override readonly retryable = false;
  readonly issues: readonly string[];
  constructor(issues: readonly string[], options?: ErrorOptions) {
    super('POLLER_CONFIG_INVALID', `invalid configuration:\n${issues.join('\n')}`, options);
    this.issues = issues;
  }
}

/** Anything thrown by user code (a plugin) becomes an Error with a message. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  if (typeof thrown === 'string') return new Error(thrown);
  try {
    return new Error(`non-error thrown: ${JSON.stringify(thrown)}`);
  } catch {
    return new Error(`non-error thrown: ${String(thrown)}`);
  }
}

/** A stable code for any error: ours carry one; Node's system errors have `code` too. */
export function errorCode(err: unknown): string {
  if (err instanceof PollerError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'POLLER_UNKNOWN';
}
