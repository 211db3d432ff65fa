/**
 * A small connection pool: at most `size` connections, reused across files, replaced when
 * broken, dropped when idle too long (servers close idle control connections after a few
 * minutes and the first command on such a connection would fail).
 */

export interface Pooled {
  /** True once the connection can no longer be trusted (socket error, abort). */
  readonly broken: boolean;
  close(): void;
}

export interface Pool<T extends Pooled> {
  /** Borrow a connection; waits (bounded by `signal`) while all `size` are lent out. */
  acquire(signal: AbortSignal): Promise<T>;
  /** Give a connection back; a broken one is closed and its slot freed. */
  release(conn: T): void;
  /** Connections lent out now. */
  readonly inUse: number;
  /** Close idle connections now and the others as they come back. Idempotent. */
  close(): void;
}

// Below the usual server idle timeouts (vsftpd 300 s, pure-ftpd 15 min, OpenSSH ClientAlive*).
const MAX_IDLE_MS = 60_000;

export function createPool<T extends Pooled>(size: number, open: (signal: AbortSignal) => Promise<T>): Pool<T> {
  const idle: { conn: T; sinceMs: number }[] = [];
  let total = 0;
  let inUse = 0;
  let closed = false;
  const waiters = new Set<() => void>();

  const wakeOne = () => {
    const next = waiters.values().next();
    if (!next.done) {
      waiters.delete(next.value);
      next.value();
    }
  };

  const waitForSlot = (signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        waiters.delete(wake);
        reject(signal.reason);
      };
      const wake = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      waiters.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });

  return {
    get inUse() {
      return inUse;
    },
    async acquire(signal) {
      // Each pass either returns, opens, or waits for a release; a release always wakes a waiter.
      for (;;) {
        signal.throwIfAborted();
        if (closed) throw new Error('connection pool is closed');
        const entry = idle.pop();
        if (entry !== undefined) {
          if (entry.conn.broken || Date.now() - entry.sinceMs > MAX_IDLE_MS) {
            entry.conn.close();
            total--;
            continue;
          }
          inUse++;
          return entry.conn;
        }
        if (total < size) {
          total++;
          try {
            const conn = await open(signal);
            inUse++;
            return conn;
          } catch (err) {
            total--;
            wakeOne();
            throw err;
          }
        }
        await waitForSlot(signal);
      }
    },
    release(conn) {
      inUse--;
      if (closed || conn.broken) {
        conn.close();
        total--;
      } else {
        idle.push({ conn, sinceMs: Date.now() });
      }
      wakeOne();
    },
    close() {
      closed = true;
      for (const entry of idle.splice(0)) {
        entry.conn.close();
        total--;
      }
      for (const wake of [...waiters]) {
        waiters.delete(wake);
        wake();
      }
    },
  };
}
