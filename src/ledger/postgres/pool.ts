/**
 * The connection side of the PostgreSQL ledger: one pool (bigint columns as numbers), a clear
 * error when the server cannot be reached, transactions retried on a deadlock or serialisation
 * failure, and the chunking of listing-sized batches.
 */
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { PermanentError } from '../../errors.js';

/** A client inside a transaction, or the pool for a single statement. */
export type Q = pg.PoolClient | pg.Pool;

/** Rows per statement for listing-sized batches: bounds the memory of one round trip. */
export const CHUNK = 10_000;
/** Transactions retried after a deadlock or serialisation failure (both harmless to redo). */
const TX_ATTEMPTS = 3;

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/** bigint columns arrive as numbers: every value here is an epoch-ms time, a size or an id (< 2^53). */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format ?? 'text');
  },
} as pg.CustomTypesConfig;

/** Thrown inside a transaction to roll a dry run back. */
export const ROLLBACK = Symbol('rollback');

export function* chunks<T>(items: readonly T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += CHUNK) yield items.slice(i, i + CHUNK);
}

export interface PoolOptions {
  readonly url: string;
  readonly displayUrl: string;
  readonly password?: string;
  readonly poolSize?: number;
  readonly onIdleError?: (err: Error) => void;
}

/** A pool whose first connection worked; one clear error when it did not. */
export async function connectPool(opts: PoolOptions): Promise<pg.Pool> {
  const client = {
    // Parsed here, not passed as connectionString: pg lets the URL's (absent) password override
    // the one given beside it.
    ...parseIntoClientConfig(opts.url),
    ...(opts.password !== undefined && { password: opts.password }),
    connectionTimeoutMillis: 15_000,
    application_name: 'poller',
    types: TYPES,
  } as pg.ClientConfig;
  // The first connection alone: a login that fails inside pg (SCRAM without a password) leaves
  // its socket open until the server's authentication timeout; it is destroyed here instead.
  const probe = new pg.Client(client);
  try {
    await probe.connect();
    await probe.end();
  } catch (err) {
    (probe as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    throw unreachable(opts.displayUrl, err);
  }
  const pool = new pg.Pool({ ...client, max: opts.poolSize ?? 4 });
  // An idle connection's error (server restart) must not crash the process; it is dropped.
  pool.on('error', (err) => opts.onIdleError?.(err));
  return pool;
}

function isRetryableTx(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === '40P01' || code === '40001';
}

/** One transaction on one connection; retried on a deadlock or serialisation failure. */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const c = await pool.connect();
    let broken = false;
    try {
      await c.query('BEGIN');
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await c.query('ROLLBACK');
      } catch {
        broken = true;
      }
      if (err !== ROLLBACK && attempt < TX_ATTEMPTS && isRetryableTx(err)) continue;
      throw err;
    } finally {
      c.release(broken);
    }
  }
}

/** A dry run: the transaction's writes are rolled back, its result kept. */
export async function rolledBack(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
  try {
    await inTransaction(pool, async (c) => {
      await fn(c);
      throw ROLLBACK;
    });
  } catch (err) {
    if (err !== ROLLBACK) throw err;
  }
}

export function unreachable(displayUrl: string, err: unknown): PermanentError {
  return new PermanentError(
    'POLLER_LEDGER_UNREACHABLE',
    `ledger ${displayUrl}: ${describePgError(err)}; check that the server runs, is reachable and accepts this user (password from ledger.passwordFile, PGPASSWORD or PGPASSFILE)`,
    { cause: err },
  );
}

/** A connection error in one line: code and message, never a connection string or password. */
export function describePgError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  // An AggregateError (IPv4 and IPv6 both refused) carries its causes in `errors`.
  const first = Array.isArray(e.errors) && e.errors.length > 0 ? (e.errors[0] as typeof e) : e;
  const code = typeof first.code === 'string' ? first.code : typeof e.code === 'string' ? e.code : undefined;
  const message = typeof first.message === 'string' && first.message !== '' ? first.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
