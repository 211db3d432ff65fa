/**
 * The connection side of the PostgreSQL ledger: one pool on the primary among the configured
 * hosts (bigint columns as numbers), moved to the new primary after a failover, a clear error
 * when no server can be reached, transactions retried on a deadlock or serialisation failure,
 * and the chunking of listing-sized batches.
 */
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { PermanentError, TransientError } from '../../errors.js';
import { backoffDelayMs, sleep } from '../../transfer/retry.js';
import { formatHost, type PgConnInfo, type PgHost, parsePgConnInfo } from '../../util/postgres-conninfo.js';
import type { LedgerConnectionStatus, LedgerSwitch } from '../ledger.js';
import { describePgError, findPrimary, isPrimaryLost, isRefusedUndone } from './primary.js';

export type { LedgerConnectionStatus, LedgerSwitch } from '../ledger.js';
export { describePgError } from './primary.js';

/** What a statement runs on: a client inside a transaction, or the ledger's pool for one statement. */
export interface Q {
  // biome-ignore lint/suspicious/noExplicitAny: node-postgres's own default row type
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

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
  /** One host or several, in libpq's forms (see util/postgres-conninfo.ts). */
  readonly url: string;
  readonly displayUrl: string;
  readonly password?: string;
  readonly poolSize?: number;
  readonly onIdleError?: (err: Error) => void;
  /** Told once per move to another host (the primary failed over), never with a password. */
  readonly onSwitch?: (s: LedgerSwitch) => void;
}

/**
 * How long a statement waits for a primary (the old one gone, the new one not yet promoted)
 * before it fails. Statements that had written nothing are run again on the new primary.
 */
const FAILOVER_WAIT_MS = 30_000;
/** A statement that only reads: `SELECT …` (a CTE may write, so `WITH` is not one). */
const READ_ONLY = /^\s*SELECT\b/i;
/** One search for the primary gives up after this long; the next failing statement starts another. */
const SEARCH_LIMIT_MS = 120_000;
/** Backoff between rounds over the hosts: short, since a promotion is usually seconds away. */
const SEARCH_BACKOFF = { baseMs: 200, maxMs: 1_000 };

/**
 * The ledger's connections: a node-postgres pool on the host that is the primary now. When a
 * statement finds that host gone or read-only, the hosts are searched again (in order, with
 * bounded backoff) and a new pool opened on the one that is primary; statements wait for it
 * meanwhile. A statement or transaction that had written nothing yet (no COMMIT sent) is run
 * again there; one whose outcome is unknown (the connection died during its commit) fails with
 * `POLLER_LEDGER_CONNECTION_LOST`, which callers treat as any transient failure.
 */
export class LedgerPool implements Q {
  readonly #opts: PoolOptions;
  readonly #client: pg.ClientConfig;
  readonly #info: PgConnInfo;
  #pool: pg.Pool;
  #host: PgHost;
  #search: Promise<void> | undefined;
  #switches = 0;
  #lastSwitch: LedgerSwitch | undefined;
  #closed = false;

  private constructor(opts: PoolOptions, info: PgConnInfo, client: pg.ClientConfig, host: PgHost) {
    this.#opts = opts;
    this.#info = info;
    this.#client = client;
    this.#host = host;
    this.#pool = this.#open(host);
  }

  /** Opened on the first acceptable host; one clear error when none is. */
  static async open(opts: PoolOptions): Promise<LedgerPool> {
    const info = parsePgConnInfo(opts.url);
    const client = {
      // Parsed here, not passed as connectionString: pg lets the URL's (absent) password override
      // the one given beside it.
      ...parseIntoClientConfig(info.baseUrl),
      ...(opts.password !== undefined && { password: opts.password }),
      connectionTimeoutMillis: 15_000,
      application_name: 'poller',
      types: TYPES,
    } as pg.ClientConfig;
    const probe = await findPrimary(info.hosts, info.target, client);
    if (!probe.found) throw unreachable(opts.displayUrl, probe.firstError ?? new Error(probe.passed.join('; ')));
    return new LedgerPool(opts, info, client, probe.found);
  }

  get ended(): boolean {
    return this.#closed;
  }

  status(): LedgerConnectionStatus {
    return {
      host: formatHost(this.#host),
      switching: this.#search !== undefined,
      switches: this.#switches,
      ...(this.#lastSwitch && { lastSwitch: this.#lastSwitch }),
    };
  }

  /** A session of its own (the migration's advisory lock): not moved on failover; release it. */
  async connect(): Promise<pg.PoolClient> {
    return (await this.#ready(Date.now() + FAILOVER_WAIT_MS)).connect();
  }

  /**
   * One statement on its own (autocommit). A plain SELECT (this ledger's single-statement reads
   * have no side effects) is run again after a failover like a statement never sent.
   */
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    const read = READ_ONLY.test(text);
    return this.#onPrimary(async (pool, sent) => {
      const c = await pool.connect();
      let broken = false;
      try {
        if (!read) sent();
        return await c.query<R>(text, values);
      } catch (err) {
        broken = isPrimaryLost(err);
        throw err;
      } finally {
        c.release(broken);
      }
    });
  }

  /** One transaction on one connection; retried on a deadlock or serialisation failure, and after a failover. */
  transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#onPrimary(async (pool, sent) => {
      for (let attempt = 1; ; attempt++) {
        const c = await pool.connect();
        let broken = false;
        try {
          await c.query('BEGIN');
          const result = await fn(c);
          sent();
          await c.query('COMMIT');
          return result;
        } catch (err) {
          if (isPrimaryLost(err)) broken = true;
          else
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
    });
  }

  async end(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  /**
   * Runs `work` on the primary's pool. `sent()` marks the point after which the work may have
   * committed; a lost primary before it means nothing was written, and the work runs again on
   * the next primary.
   */
  async #onPrimary<T>(work: (pool: pg.Pool, sent: () => void) => Promise<T>): Promise<T> {
    const deadline = Date.now() + FAILOVER_WAIT_MS;
    for (;;) {
      const pool = await this.#ready(deadline);
      let mayHaveCommitted = false;
      try {
        return await work(pool, () => {
          mayHaveCommitted = true;
        });
      } catch (err) {
        if (!isPrimaryLost(err)) throw err;
        this.#lookAgain(pool, err);
        if (mayHaveCommitted && !isRefusedUndone(err))
          throw new TransientError(
            'POLLER_LEDGER_CONNECTION_LOST',
            `ledger ${this.#opts.displayUrl}: the connection to ${formatHost(this.#host)} was lost during a write (${describePgError(err)}); its outcome is unknown, it is retried as a failed step`,
            { cause: err },
          );
        if (Date.now() >= deadline) throw this.#noPrimary(err);
      }
    }
  }

  /** The pool to use: the current one, or, while the primary is looked for, the one found. */
  async #ready(deadline: number): Promise<pg.Pool> {
    if (this.#closed) throw new PermanentError('POLLER_LEDGER_CLOSED', `ledger ${this.#opts.displayUrl}: closed`);
    while (this.#search) {
      const left = deadline - Date.now();
      if (left <= 0) throw this.#noPrimary(undefined);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#search,
        new Promise((r) => {
          timer = setTimeout(r, left);
        }),
      ]).finally(() => clearTimeout(timer));
    }
    return this.#pool;
  }

  #noPrimary(err: unknown): TransientError {
    return new TransientError(
      'POLLER_LEDGER_NO_PRIMARY',
      `ledger ${this.#opts.displayUrl}: no host accepted writes for ${FAILOVER_WAIT_MS / 1000} s${err === undefined ? '' : ` (${describePgError(err)})`}; check that a primary runs`,
      ...(err === undefined ? [] : [{ cause: err }]),
    );
  }

  /** `pool` failed with `err`: look for the primary again, once at a time. */
  #lookAgain(pool: pg.Pool, err: unknown): void {
    if (pool !== this.#pool || this.#search || this.#closed) return;
    const reason = describePgError(err);
    this.#search = this.#searchPrimary(reason).finally(() => {
      this.#search = undefined;
    });
  }

  async #searchPrimary(reason: string): Promise<void> {
    const until = Date.now() + SEARCH_LIMIT_MS;
    for (let round = 1; !this.#closed && Date.now() < until; round++) {
      const probe = await findPrimary(this.#info.hosts, this.#info.target, this.#client);
      if (probe.found) {
        this.#use(probe.found, reason);
        return;
      }
      await sleep(backoffDelayMs(round, SEARCH_BACKOFF));
    }
  }

  #use(host: PgHost, reason: string): void {
    const old = this.#pool;
    const from = formatHost(this.#host);
    this.#host = host;
    this.#pool = this.#open(host);
    // Clients still checked out finish (their statements fail on the dead host) before it closes.
    old.end().catch(() => undefined);
    const to = formatHost(host);
    if (from === to) return;
    this.#switches++;
    this.#lastSwitch = { atMs: Date.now(), from, to, reason };
    this.#opts.onSwitch?.(this.#lastSwitch);
  }

  #open(host: PgHost): pg.Pool {
    const pool = new pg.Pool({
      ...this.#client,
      host: host.host,
      ...(host.port !== undefined && { port: host.port }),
      max: this.#opts.poolSize ?? 4,
    });
    // An idle connection's error (server restart, failover) must not crash the process; it is
    // dropped, and the primary looked for at once rather than at the next statement.
    let told = false;
    pool.on('error', (err) => {
      // Once per pool: a server going away fails every idle connection at the same moment.
      if (!told) this.#opts.onIdleError?.(err);
      told = true;
      if (isPrimaryLost(err)) this.#lookAgain(pool, err);
    });
    // A connection that breaks while checked out (between a transaction's statements) emits
    // 'error' on its client, where the pool listens only while it is idle: without a listener of
    // its own that would end the process. Its next statement fails and the client is dropped.
    pool.on('connect', (client) => {
      client.on('error', (err) => {
        if (isPrimaryLost(err)) this.#lookAgain(pool, err);
      });
    });
    return pool;
  }
}

function isRetryableTx(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === '40P01' || code === '40001';
}

/** One transaction on one connection (see {@link LedgerPool.transaction}). */
export function inTransaction<T>(pool: LedgerPool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  return pool.transaction(fn);
}

/** A dry run: the transaction's writes are rolled back, its result kept. */
export async function rolledBack(pool: LedgerPool, fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
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
