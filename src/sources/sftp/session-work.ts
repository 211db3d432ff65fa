/**
 * Work on the pooled SFTP sessions of one source: one request with the data timeout and the
 * caller's signal, and a unit of work on a session taken from the pool (run once more on a fresh
 * session when a reused one turned out dead while idle).
 */
import type { SFTPWrapper } from 'ssh2';
import { PollerError, TransientError } from '../../errors.js';
import type { SourceConnectOptions } from '../source.js';
import type { SftpSession } from './connect.js';
import type { SessionPool } from './session-pool.js';

/** What the session helpers of one source share. */
export interface SessionContext {
  readonly opts: SourceConnectOptions;
  readonly hostPort: string;
  readonly pool: SessionPool<SftpSession>;
  /** How often each live session has been handed out; a reused one may have died while idle. */
  readonly uses: WeakMap<SftpSession, number>;
  isClosed(): boolean;
}

/** Runs one SFTP request with the data timeout and the caller's signal. */
export function request<T>(
  ctx: SessionContext,
  session: SftpSession,
  rel: string | undefined,
  signal: AbortSignal,
  fn: (sftp: SFTPWrapper, cb: (err: Error | undefined | null, value: T) => void) => void,
): Promise<T> {
  const { opts } = ctx;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const settle = (err: unknown, value?: T): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(err);
      else resolve(value as T);
    };
    const timer = setTimeout(() => {
      session.destroy();
      settle(
        new TransientError(
          'POLLER_SFTP_TIMEOUT',
          `sftp source "${opts.name}": ${rel ?? ctx.hostPort}: no reply within ${opts.dataTimeoutMs} ms; will retry`,
        ),
      );
    }, opts.dataTimeoutMs);
    const onAbort = (): void => settle(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    // ssh2 drops requests on a closed channel without a reply; fail fast instead of timing out.
    if (!session.isAlive()) return settle(new Error('connection closed'));
    try {
      fn(session.sftp, (err, value) => (err ? settle(err) : settle(undefined, value)));
    } catch (err) {
      settle(err);
    }
  });
}

/**
 * Runs `work` on a pooled session. With `retryStale`, work that failed because a reused
 * session turned out dead (dropped while idle, before its 'close' arrived) runs once more on a
 * fresh one; only read-only work asks for that.
 */
export async function withSession<T>(
  ctx: SessionContext,
  signal: AbortSignal,
  work: (session: SftpSession) => Promise<T>,
  retryStale = false,
): Promise<T> {
  const { opts, pool, uses } = ctx;
  const closedError = () => new TransientError('POLLER_SFTP_CLOSED', `sftp source "${opts.name}": source is closed`);
  for (let attempt = 1; ; attempt++) {
    if (ctx.isClosed()) throw closedError();
    let session: SftpSession;
    try {
      session = await pool.acquire(signal);
    } catch (err) {
      throw err instanceof PollerError || (signal.aborted && err === signal.reason) ? err : closedError();
    }
    const used = (uses.get(session) ?? 0) + 1;
    uses.set(session, used);
    try {
      return await work(session);
    } catch (err) {
      const stale =
        retryStale &&
        attempt === 1 &&
        used > 1 &&
        !session.isAlive() &&
        !signal.aborted &&
        !(err instanceof PollerError) &&
        typeof (err as { code?: unknown } | null)?.code !== 'number';
      if (!stale) throw err;
      opts.log.debug({ event: 'source.reconnected', source: opts.name, session: session.id }, 'stale sftp session');
    } finally {
      pool.release(session);
    }
  }
}
