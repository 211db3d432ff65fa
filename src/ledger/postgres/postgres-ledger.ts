/**
 * The PostgreSQL ledger (node-postgres), for several pollers sharing one database. The SQLite
 * ledger's transitions, in set form: a batch is one statement over `unnest` arrays (two array
 * parameters whatever the batch size, far from PostgreSQL's 65,535-parameter cap), and claims are
 * `FOR UPDATE SKIP LOCKED` on partial indexes of due rows, so concurrent claimers never wait on
 * each other and never take the same row. A write whose claim is no longer held changes nothing.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { PermanentError, TransientError } from '../../errors.js';
import type {
  ActivitySlot,
  ClaimLost,
  EventFact,
  EventKind,
  FetchedItem,
  FetchFailedItem,
  FileQuery,
  FileRecord,
  FileState,
  InstanceRecord,
  InstanceRegistry,
  Ledger,
  LedgerStats,
  Observation,
  ObserveOptions,
  ObserveResult,
  OutboxEvent,
  OutboxRoute,
  OutboxStats,
  PluginRunRecord,
  PluginRunStart,
  ProcessingResult,
  PruneResult,
  PruneRules,
  SharedListing,
  SourceStatus,
  SweepResult,
} from '../ledger.js';
import { OutboxRouter, processingEvents } from '../outbox-routes.js';
import {
  CRASHED_RUN_MESSAGE,
  classifySighting,
  clip,
  dirOf,
  type FileRow,
  groupByDir,
  type LatestRow,
  listingDigest,
  processingVerdict,
  type RunRow,
  readiness,
  runEndValues,
  SUPERSEDED_MESSAGE,
  sourceStatuses,
  toRecord,
  toRun,
} from '../rows.js';
import { MIGRATION_LOCK_KEY, PG_MIGRATIONS, SWEEP_LOCK_KEY } from './migrations.js';

export interface PostgresLedgerOptions {
  /** `postgres://user@host:port/db`, without a password. */
  readonly url: string;
  /** The same URL as shown in logs and errors (no userinfo secrets). */
  readonly displayUrl: string;
  /** From `passwordFile` or the config; otherwise PGPASSWORD or PGPASSFILE (~/.pgpass) apply. */
  readonly password?: string;
  /** Connections this process holds at most. @default 4 */
  readonly poolSize?: number;
  /** Read-only commands (status, files, why): no migration; the schema must be current. */
  readonly readonly?: boolean;
  /** Told about errors of idle connections (a restarted server); they are replaced on next use. */
  readonly onIdleError?: (err: Error) => void;
}

/** Rows per statement for listing-sized batches: bounds the memory of one round trip. */
const CHUNK = 10_000;
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

type Q = pg.PoolClient | pg.Pool;

function isRetryableTx(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === '40P01' || code === '40001';
}

/** Thrown inside a transaction to roll back a dry run. */
const ROLLBACK = Symbol('rollback');

export class PostgresLedger implements Ledger, InstanceRegistry, SharedListing {
  readonly #pool: pg.Pool;
  readonly #outbox = new OutboxRouter();
  readonly #displayUrl: string;

  private constructor(pool: pg.Pool, displayUrl: string) {
    this.#pool = pool;
    this.#displayUrl = displayUrl;
  }

  /** Connect, and migrate (or, read-only, check) the schema. One clear error when unreachable. */
  static async open(opts: PostgresLedgerOptions): Promise<PostgresLedger> {
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
    const ledger = new PostgresLedger(pool, opts.displayUrl);
    try {
      if (opts.readonly) await ledger.#checkSchema();
      else await ledger.#migrate();
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (err instanceof PermanentError) throw err;
      throw unreachable(opts.displayUrl, err);
    }
    return ledger;
  }

  get displayUrl(): string {
    return this.#displayUrl;
  }

  async #schemaVersion(c: Q): Promise<number> {
    await c.query('CREATE TABLE IF NOT EXISTS poller_schema (version integer PRIMARY KEY, applied_ms bigint NOT NULL)');
    const r = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM poller_schema');
    return r.rows[0]?.v ?? 0;
  }

  async #checkSchema(): Promise<void> {
    const r = await this.#pool.query<{ t: string | null }>(`SELECT to_regclass('poller_schema')::text AS t`);
    const version =
      r.rows[0]?.t === null
        ? 0
        : ((await this.#pool.query<{ v: number | null }>('SELECT max(version) AS v FROM poller_schema')).rows[0]?.v ??
          0);
    if (version !== PG_MIGRATIONS.length)
      throw new PermanentError(
        'POLLER_LEDGER_SCHEMA_MISMATCH',
        `ledger schema version ${version}, this poller reads ${PG_MIGRATIONS.length}; run \`poller check\` or start the daemon once to migrate it`,
      );
  }

  async #migrate(): Promise<void> {
    const c = await this.#pool.connect();
    try {
      // Session lock: every host starting at once waits here; each finds the steps already done.
      await c.query('SELECT pg_advisory_lock($1)', [String(MIGRATION_LOCK_KEY)]);
      try {
        const current = await this.#schemaVersion(c);
        if (current > PG_MIGRATIONS.length)
          throw new PermanentError(
            'POLLER_LEDGER_SCHEMA_TOO_NEW',
            `ledger schema version ${current} is newer than this poller understands (${PG_MIGRATIONS.length}); upgrade poller`,
          );
        for (let step = current; step < PG_MIGRATIONS.length; step++) {
          await c.query('BEGIN');
          try {
            await c.query(PG_MIGRATIONS[step] as string);
            await c.query('INSERT INTO poller_schema (version, applied_ms) VALUES ($1, $2)', [step + 1, Date.now()]);
            await c.query('COMMIT');
          } catch (err) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
        }
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [String(MIGRATION_LOCK_KEY)]).catch(() => undefined);
      }
    } finally {
      c.release();
    }
  }

  /** One transaction on one connection; retried on a deadlock or serialisation failure. */
  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.#pool.connect();
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

  async observe(source: string, observations: readonly Observation[], opts: ObserveOptions): Promise<ObserveResult> {
    const counts = { listed: observations.length, new: 0, changed: 0, unchanged: 0, settling: 0, rejected: 0 };
    const now = opts.nowMs;
    const isReady = readiness(opts);
    let ready: FileRecord[] = [];
    const run = async (c: pg.PoolClient) => {
      if (opts.lister) await checkLister(c, source, opts.lister);
      const groups = [...groupByDir(observations)].map(([dir, group]) => ({
        dir,
        group,
        digest: listingDigest(group),
      }));
      const stored = new Map<string, { digest: string; rejected: number }>();
      for (const dirs of chunks(groups.map((g) => g.dir))) {
        const r = await c.query<{ dir: string; digest: string; rejected: number }>(
          'SELECT dir, digest, rejected FROM listing_digests WHERE source = $1 AND dir = ANY($2::text[])',
          [source, dirs],
        );
        for (const row of r.rows) stored.set(row.dir, row);
      }
      const changed = groups.filter((g) => {
        const s = stored.get(g.dir);
        if (s?.digest !== g.digest) return true;
        counts.unchanged += g.group.length - s.rejected;
        counts.rejected += s.rejected;
        return false;
      });
      const latest = new Map<string, LatestRow>();
      for (const paths of chunks(changed.flatMap((g) => g.group.map((o) => o.entry.path)))) {
        const r = await c.query<LatestRow & { path: string }>(
          `SELECT DISTINCT ON (path) path, id, size_bytes, mtime_ms, mtime_precision, state, stage, sightings, next_retry_ms, etag
           FROM files WHERE source = $1 AND path = ANY($2::text[]) ORDER BY path, id DESC`,
          [source, paths],
        );
        for (const row of r.rows) latest.set(row.path, row);
      }
      // Ready ids in listing order; a number, or the index of an insert whose id comes back later.
      const readyOrder: Array<{ id: number } | { insert: number }> = [];
      const ins = {
        path: [] as string[],
        size: [] as number[],
        mtime: [] as number[],
        precision: [] as string[],
        etag: [] as string[],
      };
      const insMeta: Array<{ state: string; code: string | null; error: string | null; mayBeReady: boolean }> = [];
      const regrow = {
        id: [] as number[],
        size: [] as number[],
        mtime: [] as number[],
        precision: [] as string[],
        etag: [] as string[],
      };
      const sighted: number[] = [];
      const digestPut = { dir: [] as string[], digest: [] as string[], rejected: [] as number[] };
      const digestDrop: string[] = [];
      const insert = (
        o: Observation,
        state: string,
        code: string | null,
        error: string | null,
        mayBeReady: boolean,
      ) => {
        ins.path.push(o.entry.path);
        ins.size.push(o.entry.sizeBytes);
        ins.mtime.push(o.entry.mtimeMs);
        ins.precision.push(o.entry.mtimePrecision);
        ins.etag.push(o.entry.etag ?? '');
        insMeta.push({ state, code, error, mayBeReady });
        return insMeta.length - 1;
      };
      for (const g of changed) {
        let allQuiet = true;
        const rejectedBefore = counts.rejected;
        for (const o of g.group) {
          const row = latest.get(o.entry.path);
          const s = classifySighting(o, row, now);
          switch (s.kind) {
            case 'insert-rejected':
              insert(o, 'rejected', 'POLLER_LANDING_UNSAFE_PATH', o.rejectReason ?? null, false);
              counts.new++;
              counts.rejected++;
              allQuiet = false;
              break;
            case 'rejected':
              counts.rejected++;
              break;
            case 'insert': {
              allQuiet = false;
              if (s.isNew) counts.new++;
              else counts.changed++;
              const mayBeReady = isReady(o.entry.mtimeMs, 1);
              const i = insert(o, 'seen', null, null, mayBeReady);
              if (mayBeReady) readyOrder.push({ insert: i });
              else counts.settling++;
              break;
            }
            case 'regrow': {
              const r = row as LatestRow;
              allQuiet = false;
              regrow.id.push(r.id);
              regrow.size.push(o.entry.sizeBytes);
              regrow.mtime.push(o.entry.mtimeMs);
              regrow.precision.push(o.entry.mtimePrecision);
              regrow.etag.push(o.entry.etag ?? '');
              counts.changed++;
              if (isReady(o.entry.mtimeMs, 1)) readyOrder.push({ id: r.id });
              else counts.settling++;
              break;
            }
            case 'sighted': {
              const r = row as LatestRow;
              allQuiet = false;
              sighted.push(r.id);
              if (isReady(r.mtime_ms, r.sightings + 1)) readyOrder.push({ id: r.id });
              else counts.settling++;
              break;
            }
            case 'unchanged':
              counts.unchanged++;
              if (!s.quiet) allQuiet = false;
              if (s.due) readyOrder.push({ id: (row as LatestRow).id });
              break;
          }
        }
        if (allQuiet) {
          digestPut.dir.push(g.dir);
          digestPut.digest.push(g.digest);
          digestPut.rejected.push(counts.rejected - rejectedBefore);
        } else if (stored.has(g.dir)) digestDrop.push(g.dir);
      }
      // Inserted ids by index; an insert that met an existing identical row returns nothing.
      const insertedIds = new Map<number, number>();
      for (let from = 0; from < ins.path.length; from += CHUNK) {
        const to = Math.min(from + CHUNK, ins.path.length);
        const r = await c.query<{ id: number; ord: number }>(
          `WITH u AS (
             SELECT * FROM unnest($3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
               WITH ORDINALITY AS u(path, size, mtime, prec, state, code, error, etag, ord))
           , ins AS (
             INSERT INTO files (source, path, size_bytes, mtime_ms, mtime_precision, etag, state, sightings,
               first_seen_ms, last_seen_ms, error_code, last_error, updated_ms)
             SELECT $1, path, size, mtime, prec, etag, state, 1, $2, $2, code, error, $2 FROM u ORDER BY ord
             ON CONFLICT (source, path, size_bytes, mtime_ms, etag) DO NOTHING
             RETURNING id, path, size_bytes, mtime_ms, etag)
           SELECT ins.id, u.ord FROM ins JOIN u
             ON u.path = ins.path AND u.size = ins.size_bytes AND u.mtime = ins.mtime_ms AND u.etag = ins.etag`,
          [
            source,
            now,
            ins.path.slice(from, to),
            ins.size.slice(from, to),
            ins.mtime.slice(from, to),
            ins.precision.slice(from, to),
            insMeta.slice(from, to).map((m) => m.state),
            insMeta.slice(from, to).map((m) => m.code),
            insMeta.slice(from, to).map((m) => m.error && clip(m.error)),
            ins.etag.slice(from, to),
          ],
        );
        for (const row of r.rows) insertedIds.set(from + row.ord - 1, row.id);
      }
      for (let from = 0; from < regrow.id.length; from += CHUNK) {
        const to = from + CHUNK;
        await c.query(
          `UPDATE files f SET size_bytes = u.size, mtime_ms = u.mtime, mtime_precision = u.prec, etag = u.etag,
             sightings = 1, last_seen_ms = $1, updated_ms = $1, ready_ms = NULL
           FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::text[]) AS u(id, size, mtime, prec, etag)
           WHERE f.id = u.id AND f.state = 'seen'`,
          [
            now,
            regrow.id.slice(from, to),
            regrow.size.slice(from, to),
            regrow.mtime.slice(from, to),
            regrow.precision.slice(from, to),
            regrow.etag.slice(from, to),
          ],
        );
      }
      for (const ids of chunks(sighted))
        await c.query(
          `UPDATE files SET sightings = sightings + 1, last_seen_ms = $1, updated_ms = $1 WHERE id = ANY($2::bigint[])`,
          [now, ids],
        );
      if (digestPut.dir.length > 0)
        await c.query(
          `INSERT INTO listing_digests (source, dir, digest, rejected, stored_ms)
           SELECT $1, dir, digest, rejected, $2 FROM unnest($3::text[], $4::text[], $5::int[]) AS u(dir, digest, rejected)
           ON CONFLICT (source, dir) DO UPDATE SET digest = excluded.digest, rejected = excluded.rejected,
             stored_ms = excluded.stored_ms`,
          [source, now, digestPut.dir, digestPut.digest, digestPut.rejected],
        );
      if (digestDrop.length > 0)
        await c.query('DELETE FROM listing_digests WHERE source = $1 AND dir = ANY($2::text[])', [source, digestDrop]);
      const readyIds: number[] = [];
      for (const r of readyOrder) {
        if ('id' in r) readyIds.push(r.id);
        else {
          const id = insertedIds.get(r.insert);
          if (id !== undefined) readyIds.push(id);
          else counts.settling++;
        }
      }
      // Readiness in the ledger: instances that do not list this source claim these too.
      for (const ids of chunks(readyIds))
        await c.query(
          `UPDATE files SET ready_ms = $1 WHERE id = ANY($2::bigint[]) AND state = 'seen' AND ready_ms IS NULL`,
          [now, ids],
        );
      ready = await this.#byIds(c, readyIds);
      if (opts.dryRun) throw ROLLBACK;
    };
    try {
      await this.#tx(run);
    } catch (err) {
      if (err !== ROLLBACK) throw err;
    }
    return { ready, counts };
  }

  /** Rows by id, in the order given. */
  async #byIds(c: Q, ids: readonly number[]): Promise<FileRecord[]> {
    if (ids.length === 0) return [];
    const rows = new Map<number, FileRow>();
    for (const part of chunks(ids)) {
      const r = await c.query<FileRow>('SELECT * FROM files WHERE id = ANY($1::bigint[])', [part]);
      for (const row of r.rows) rows.set(row.id, row);
    }
    return ids.flatMap((id) => {
      const row = rows.get(id);
      return row ? [toRecord(row)] : [];
    });
  }

  /** Claim the given ids that are due for `to`; rows another claimer holds are skipped, not waited for. */
  async #claimIds(
    ids: readonly number[],
    to: 'fetching' | 'processing',
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
  ): Promise<FileRecord[]> {
    if (ids.length === 0) return [];
    const due =
      to === 'fetching'
        ? `(state = 'seen' OR (state = 'failed' AND stage = 'fetch' AND next_retry_ms <= $4))`
        : `(state = 'fetched' OR (state = 'failed' AND stage = 'process' AND next_retry_ms <= $4))`;
    const r = await this.#pool.query<FileRow>(
      `WITH c AS (SELECT id FROM files WHERE id = ANY($1::bigint[]) AND ${due} FOR UPDATE SKIP LOCKED)
       UPDATE files f SET state = $5, claimed_by = $2, lease_until_ms = $3, updated_ms = $4
       FROM c WHERE f.id = c.id RETURNING f.*`,
      [ids, owner, leaseUntilMs, nowMs, to],
    );
    return inOrder(ids, r.rows);
  }

  async claimForFetch(
    ids: readonly number[],
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
  ): Promise<FileRecord[]> {
    return await this.#claimIds(ids, 'fetching', owner, leaseUntilMs, nowMs);
  }

  async renewLeases(ids: readonly number[], owner: string, leaseUntilMs: number): Promise<ClaimLost> {
    if (ids.length === 0) return [];
    const r = await this.#pool.query<{ id: string }>(
      `UPDATE files SET lease_until_ms = $3
       WHERE id = ANY($1::bigint[]) AND claimed_by = $2 AND state IN ('fetching', 'processing')
       RETURNING id`,
      [ids, owner, leaseUntilMs],
    );
    const renewed = new Set(r.rows.map((x) => Number(x.id)));
    return ids.filter((id) => !renewed.has(id));
  }

  async markFetched(items: readonly FetchedItem[], owner: string, nowMs: number): Promise<ClaimLost> {
    if (items.length === 0) return [];
    const sql = `UPDATE files f SET state = CASE WHEN u.done THEN 'processed' ELSE 'fetched' END, stage = NULL,
         local_path = u.local_path, fetched_ms = $2, done_ms = CASE WHEN u.done THEN $2 ELSE f.done_ms END,
         claimed_by = NULL, lease_until_ms = NULL, error_code = NULL, last_error = NULL, next_retry_ms = NULL,
         fetch_attempts = f.fetch_attempts + 1, updated_ms = $2
       FROM unnest($3::bigint[], $4::text[], $5::boolean[]) AS u(id, local_path, done)
       WHERE f.id = u.id AND f.claimed_by = $1 AND f.state = 'fetching'
       RETURNING f.*`;
    const params = [owner, nowMs, items.map((i) => i.id), items.map((i) => i.localPath), items.map((i) => !!i.done)];
    return this.#claimedUpdate(items, sql, params, nowMs, async (c, rows) => {
      const events: PendingEvent[] = [];
      if (rows.length > 0) {
        const fetchedRows = rows.filter((r) => this.#outbox.sinks('fetched', r.source).length > 0);
        const prior = new Set<number>();
        if (fetchedRows.length > 0) {
          const p = await c.query<{ id: number }>(
            `SELECT f.id FROM files f WHERE f.id = ANY($1::bigint[]) AND EXISTS (
               SELECT 1 FROM files p WHERE p.source = f.source AND p.path = f.path AND p.id < f.id AND p.fetched_ms IS NOT NULL)`,
            [fetchedRows.map((r) => r.id)],
          );
          for (const row of p.rows) prior.add(row.id);
        }
        const byId = new Map(items.map((i) => [i.id, i]));
        for (const row of rows) {
          const item = byId.get(row.id) as FetchedItem;
          events.push(
            ...this.#events('fetched', row, {
              localPath: item.localPath,
              sha512: item.sha512 ?? null,
              update: prior.has(row.id),
            }),
          );
          // No plugin matches: the file is processed in this same write.
          if (item.done) events.push(...this.#events('processed', row, { localPath: item.localPath, outputs: [] }));
        }
      }
      return events;
    });
  }

  async markFetchFailed(items: readonly FetchFailedItem[], owner: string, nowMs: number): Promise<ClaimLost> {
    if (items.length === 0) return [];
    const sql = `UPDATE files f SET state = u.state, stage = 'fetch', error_code = u.code, last_error = u.error,
         next_retry_ms = u.retry, fetch_attempts = f.fetch_attempts + u.counted, claimed_by = NULL,
         lease_until_ms = NULL, updated_ms = $2, done_ms = CASE WHEN u.state = 'quarantined' THEN $2 ELSE f.done_ms END
       FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::int[])
         AS u(id, state, code, error, retry, counted)
       WHERE f.id = u.id AND f.claimed_by = $1 AND f.state = 'fetching'
       RETURNING f.*`;
    const params = [
      owner,
      nowMs,
      items.map((i) => i.id),
      items.map((i) => (i.failure.quarantine ? 'quarantined' : 'failed')),
      items.map((i) => i.failure.errorCode),
      items.map((i) => clip(i.failure.message)),
      items.map((i) => (i.failure.quarantine ? null : (i.failure.nextRetryMs ?? nowMs))),
      items.map((i) => (i.failure.notCounted ? 0 : 1)),
    ];
    return this.#claimedUpdate(items, sql, params, nowMs, (_c, rows) => {
      const byId = new Map(items.map((i) => [i.id, i.failure]));
      const events: PendingEvent[] = [];
      for (const row of rows) {
        const f = byId.get(row.id);
        if (!f || (f.notCounted && !f.quarantine)) continue;
        events.push(
          ...this.#events(f.quarantine ? 'quarantined' : 'failed', row, {
            stage: 'fetch',
            errorCode: f.errorCode,
            message: row.last_error,
            attempts: row.fetch_attempts,
          }),
        );
      }
      return events;
    });
  }

  /**
   * One UPDATE … RETURNING of claimed rows; with sinks configured, the events the updated rows
   * give are written in the same transaction. Returns the ids whose claim was lost.
   */
  async #claimedUpdate(
    items: readonly { id: number }[],
    sql: string,
    params: unknown[],
    nowMs: number,
    eventsOf: (c: Q, rows: FileRow[]) => PendingEvent[] | Promise<PendingEvent[]>,
  ): Promise<ClaimLost> {
    const write = async (c: Q) => {
      const rows = (await c.query<FileRow>(sql, params)).rows;
      if (this.#outbox.enabled) await insertEvents(c, await eventsOf(c, rows), nowMs);
      return rows;
    };
    const rows = this.#outbox.enabled ? await this.#tx(write) : await write(this.#pool);
    return lostOf(
      items.map((i) => i.id),
      rows,
    );
  }

  async releaseFetch(ids: readonly number[], owner: string, nowMs: number): Promise<void> {
    if (ids.length === 0) return;
    await this.#pool.query(
      `UPDATE files SET state = 'seen', sightings = 1, ready_ms = NULL, claimed_by = NULL, lease_until_ms = NULL,
         updated_ms = $3
       WHERE id = ANY($1::bigint[]) AND claimed_by = $2 AND state = 'fetching'`,
      [ids, owner, nowMs],
    );
  }

  async claimForProcessing(
    source: string | undefined,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<FileRecord[]> {
    const r = await this.#pool.query<FileRow>(
      `WITH c AS (
         SELECT id FROM files WHERE ($1::text IS NULL OR source = $1)
           AND (state = 'fetched' OR (state = 'failed' AND stage = 'process' AND next_retry_ms <= $4))
         ORDER BY mtime_ms DESC LIMIT $5
         FOR UPDATE SKIP LOCKED)
       UPDATE files f SET state = 'processing', claimed_by = $2, lease_until_ms = $3, updated_ms = $4
       FROM c WHERE f.id = c.id RETURNING f.*`,
      [source ?? null, owner, leaseUntilMs, nowMs, limit],
    );
    return r.rows.sort((a, b) => b.mtime_ms - a.mtime_ms || a.id - b.id).map(toRecord);
  }

  async claimIdsForProcessing(
    ids: readonly number[],
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
  ): Promise<FileRecord[]> {
    return await this.#claimIds(ids, 'processing', owner, leaseUntilMs, nowMs);
  }

  async markSuperseded(ids: readonly number[], owner: string, nowMs: number): Promise<ClaimLost> {
    if (ids.length === 0) return [];
    const r = await this.#pool.query<{ id: number }>(
      `UPDATE files SET state = 'superseded', stage = NULL, claimed_by = NULL, lease_until_ms = NULL, done_ms = $3,
         error_code = 'POLLER_LANDING_SUPERSEDED', last_error = $4, next_retry_ms = NULL, updated_ms = $3
       WHERE id = ANY($1::bigint[]) AND claimed_by = $2 AND state = 'processing' RETURNING id`,
      [ids, owner, nowMs, SUPERSEDED_MESSAGE],
    );
    return lostOf(ids, r.rows);
  }

  async pluginRuns(fileIds: readonly number[]): Promise<Map<number, PluginRunRecord[]>> {
    const out = new Map<number, PluginRunRecord[]>(fileIds.map((id) => [id, []]));
    if (fileIds.length === 0) return out;
    for (const part of chunks(fileIds)) {
      const r = await this.#pool.query<RunRow>(
        'SELECT * FROM plugin_runs WHERE file_id = ANY($1::bigint[]) ORDER BY file_id, plugin',
        [part],
      );
      for (const row of r.rows) out.get(row.file_id)?.push(toRun(row));
    }
    return out;
  }

  async markPluginRunning(runs: readonly PluginRunStart[], nowMs: number): Promise<number[]> {
    if (runs.length === 0) return [];
    const r = await this.#pool.query<{ file_id: number; plugin: string; attempts: number }>(
      `INSERT INTO plugin_runs (file_id, plugin, state, attempts, updated_ms)
       SELECT id, plugin, 'running', 1, $3 FROM unnest($1::bigint[], $2::text[]) AS u(id, plugin)
       ON CONFLICT (file_id, plugin) DO UPDATE SET state = 'running', attempts = plugin_runs.attempts + 1, updated_ms = $3
       RETURNING file_id, plugin, attempts`,
      [runs.map((x) => x.fileId), runs.map((x) => x.plugin), nowMs],
    );
    const got = new Map(r.rows.map((row) => [`${row.file_id}\0${row.plugin}`, row.attempts]));
    return runs.map((x) => got.get(`${x.fileId}\0${x.plugin}`) ?? 1);
  }

  async finishProcessing(
    results: readonly ProcessingResult[],
    owner: string,
    nowMs: number,
  ): Promise<Array<FileState | 'claim-lost'>> {
    if (results.length === 0) return [];
    return await this.#tx(async (c) => {
      // Lock the files this owner still holds; the others are not written at all.
      const held = new Set(
        (
          await c.query<{ id: number }>(
            `SELECT id FROM files WHERE id = ANY($1::bigint[]) AND claimed_by = $2 AND state = 'processing'
             ORDER BY id FOR UPDATE`,
            [results.map((r) => r.id), owner],
          )
        ).rows.map((r) => r.id),
      );
      const mine = results.filter((r) => held.has(r.id));
      const ends = mine.flatMap((r) =>
        r.outcomes.map((o) => ({ id: r.id, plugin: o.plugin, ...runEndValues(o, nowMs) })),
      );
      if (ends.length > 0)
        await c.query(
          `UPDATE plugin_runs p SET state = u.state, error_code = u.code, last_error = u.error, duration_ms = u.duration,
             next_retry_ms = u.retry, outputs = u.outputs::jsonb, updated_ms = $1, attempts = p.attempts - u.uncounted
           FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[],
             $9::text[], $10::int[]) AS u(id, plugin, state, code, error, duration, retry, outputs, uncounted)
           WHERE p.file_id = u.id AND p.plugin = u.plugin`,
          [
            nowMs,
            ends.map((e) => e.id),
            ends.map((e) => e.plugin),
            ends.map((e) => e.state),
            ends.map((e) => e.code),
            ends.map((e) => e.error),
            ends.map((e) => e.duration),
            ends.map((e) => e.retry),
            ends.map((e) => e.outputs),
            ends.map((e) => e.uncounted),
          ],
        );
      // Runs of earlier passes count too: a file is processed only when every matching plugin succeeded.
      const runsOf = new Map<number, RunRow[]>(mine.map((r) => [r.id, []]));
      if (mine.length > 0) {
        const r = await c.query<RunRow>(
          'SELECT * FROM plugin_runs WHERE file_id = ANY($1::bigint[]) ORDER BY file_id, plugin',
          [mine.map((m) => m.id)],
        );
        for (const row of r.rows) runsOf.get(row.file_id)?.push(row);
      }
      const verdicts = new Map(
        mine.map((m) => [m.id, processingVerdict(m.outcomes, runsOf.get(m.id) ?? [], nowMs)] as const),
      );
      const updated = new Map<number, FileRow>();
      if (mine.length > 0) {
        const v = mine.map((m) => verdicts.get(m.id) as ReturnType<typeof processingVerdict>);
        const r = await c.query<FileRow>(
          `UPDATE files f SET state = u.state, stage = u.stage, error_code = u.code, last_error = u.error,
             next_retry_ms = u.retry, claimed_by = NULL, lease_until_ms = NULL, done_ms = u.done, updated_ms = $1
           FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
             AS u(id, state, stage, code, error, retry, done)
           WHERE f.id = u.id AND f.claimed_by = $9 AND f.state = 'processing'
           RETURNING f.*`,
          [
            nowMs,
            mine.map((m) => m.id),
            v.map((x) => x.state),
            v.map((x) => x.stage),
            v.map((x) => x.code),
            v.map((x) => x.error),
            v.map((x) => x.retry),
            v.map((x) => x.done),
            owner,
          ],
        );
        for (const row of r.rows) updated.set(row.id, row);
      }
      if (this.#outbox.enabled) {
        const events: PendingEvent[] = [];
        for (const m of mine) {
          const row = updated.get(m.id);
          if (!row) continue;
          for (const e of processingEvents(row, row.state, m.outcomes, runsOf.get(m.id) ?? []))
            events.push(...this.#events(e.kind, row, e.extra));
        }
        await insertEvents(c, events, nowMs);
      }
      return results.map((r) => updated.get(r.id)?.state ?? 'claim-lost');
    });
  }

  async recoverStale(
    nowMs: number,
    isOwnerGone: (owner: string) => boolean,
  ): Promise<{ fetches: number; processing: number }> {
    return await this.#tx(async (c) => {
      const rows = (
        await c.query<{ id: number; state: FileState; claimed_by: string | null; lease_until_ms: number | null }>(
          `SELECT id, state, claimed_by, lease_until_ms FROM files WHERE state IN ('fetching', 'processing')`,
        )
      ).rows.filter(
        (row) =>
          row.lease_until_ms === null ||
          row.lease_until_ms <= nowMs ||
          (row.claimed_by !== null && isOwnerGone(row.claimed_by)),
      );
      const unclaim = async (state: 'fetching' | 'processing', back: 'seen' | 'fetched') => {
        const part = rows.filter((r) => r.state === state);
        if (part.length === 0) return 0;
        const r = await c.query(
          `UPDATE files f SET state = $1, claimed_by = NULL, lease_until_ms = NULL, updated_ms = $2
           FROM unnest($3::bigint[], $4::text[]) AS u(id, owner)
           WHERE f.id = u.id AND f.state = $5 AND f.claimed_by IS NOT DISTINCT FROM u.owner`,
          [back, nowMs, part.map((p) => p.id), part.map((p) => p.claimed_by), state],
        );
        return r.rowCount ?? 0;
      };
      const fetches = await unclaim('fetching', 'seen');
      const processing = await unclaim('processing', 'fetched');
      // A plugin run left 'running' by a process that died was not recorded as a success: it
      // runs again. Its attempt was counted when it started, so a file whose run kills the
      // poller every time is quarantined after maxAttempts instead of crash-looping.
      await c.query(
        `UPDATE plugin_runs SET state = 'failed', error_code = 'POLLER_PLUGIN_CRASHED', last_error = $1, next_retry_ms = $2
         WHERE state = 'running' AND file_id IN (SELECT id FROM files WHERE state = 'fetched')`,
        [CRASHED_RUN_MESSAGE, nowMs],
      );
      return { fetches, processing };
    });
  }

  async scheduleRetry(
    f: { source?: string; plugin?: string; path?: string; includeQuarantined: boolean },
    nowMs: number,
  ): Promise<number[]> {
    return await this.#tx(async (c) => {
      // Quarantined fetches become due again: their directories must be diffed entry by entry.
      await c.query('DELETE FROM listing_digests');
      const states = f.includeQuarantined ? ['failed', 'quarantined'] : ['failed'];
      const rows = (
        await c.query<FileRow>(
          `SELECT * FROM files WHERE state = ANY($1::text[]) AND ($2::text IS NULL OR source = $2)
             AND ($3::text IS NULL OR path = $3) ORDER BY id FOR UPDATE`,
          [states, f.source ?? null, f.path ?? null],
        )
      ).rows;
      const processIds = rows.filter((r) => r.stage === 'process').map((r) => r.id);
      const runsOf = new Map<number, RunRow[]>();
      if (processIds.length > 0) {
        const r = await c.query<RunRow>('SELECT * FROM plugin_runs WHERE file_id = ANY($1::bigint[])', [processIds]);
        for (const run of r.rows) runsOf.set(run.file_id, [...(runsOf.get(run.file_id) ?? []), run]);
      }
      const runKeys = { id: [] as number[], plugin: [] as string[] };
      const ids: number[] = [];
      for (const row of rows) {
        if (row.stage === 'process') {
          const runs = (runsOf.get(row.id) ?? []).filter(
            (r) =>
              (r.state === 'failed' || (f.includeQuarantined && r.state === 'quarantined')) &&
              (!f.plugin || r.plugin === f.plugin),
          );
          if (runs.length === 0) continue;
          for (const r of runs) {
            runKeys.id.push(row.id);
            runKeys.plugin.push(r.plugin);
          }
        } else if (f.plugin) continue;
        ids.push(row.id);
      }
      if (runKeys.id.length > 0)
        await c.query(
          `UPDATE plugin_runs p SET state = 'failed', next_retry_ms = $1,
             attempts = CASE WHEN p.state = 'quarantined' THEN 0 ELSE p.attempts END
           FROM unnest($2::bigint[], $3::text[]) AS u(id, plugin) WHERE p.file_id = u.id AND p.plugin = u.plugin`,
          [nowMs, runKeys.id, runKeys.plugin],
        );
      if (ids.length > 0)
        await c.query(
          `UPDATE files SET state = 'failed', next_retry_ms = $1,
             fetch_attempts = CASE WHEN state = 'quarantined' AND stage = 'fetch' THEN 0 ELSE fetch_attempts END,
             updated_ms = $1
           WHERE id = ANY($2::bigint[])`,
          [nowMs, ids],
        );
      return ids;
    });
  }

  async forget(f: { source: string; path?: string; state?: FileState }): Promise<number> {
    return await this.#tx(async (c) => {
      await c.query('DELETE FROM listing_digests WHERE source = $1', [f.source]);
      const r = await c.query(
        `DELETE FROM files WHERE source = $1 AND state NOT IN ('fetching', 'processing')
           AND ($2::text IS NULL OR path = $2) AND ($3::text IS NULL OR state = $3)`,
        [f.source, f.path ?? null, f.state ?? null],
      );
      return r.rowCount ?? 0;
    });
  }

  async get(id: number): Promise<FileRecord | undefined> {
    const r = await this.#pool.query<FileRow>('SELECT * FROM files WHERE id = $1', [id]);
    return r.rows[0] && toRecord(r.rows[0]);
  }

  async history(source: string, p: string): Promise<FileRecord[]> {
    const r = await this.#pool.query<FileRow>('SELECT * FROM files WHERE source = $1 AND path = $2 ORDER BY id DESC', [
      source,
      p,
    ]);
    return r.rows.map(toRecord);
  }

  async files(q: FileQuery): Promise<FileRecord[]> {
    // ILIKE: the same case-insensitive substring match as SQLite's LIKE.
    const r = await this.#pool.query<FileRow>(
      `SELECT * FROM files WHERE ($1::text IS NULL OR source = $1) AND ($2::text IS NULL OR state = $2)
         AND ($3::text IS NULL OR path = $3 OR path ILIKE '%' || $3 || '%')
       ORDER BY id DESC LIMIT $4`,
      [q.source ?? null, q.state ?? null, q.path ?? null, q.limit ?? 100],
    );
    return r.rows.map(toRecord);
  }

  async recordPoll(
    source: string,
    displayUrl: string,
    ok: boolean,
    error: string | null,
    nowMs: number,
  ): Promise<void> {
    await this.#pool.query(
      `INSERT INTO sources (name, display_url, last_poll_ms, last_success_ms, last_error) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO UPDATE SET display_url = $2, last_poll_ms = $3,
         last_success_ms = COALESCE($4, sources.last_success_ms), last_error = $5`,
      [source, displayUrl, nowMs, ok ? nowMs : null, error && clip(error)],
    );
  }

  async status(): Promise<SourceStatus[]> {
    const [sources, counts, newest] = await Promise.all([
      this.#pool.query<{
        name: string;
        display_url: string | null;
        last_poll_ms: number | null;
        last_success_ms: number | null;
        last_error: string | null;
      }>(
        `SELECT name, display_url, last_poll_ms, last_success_ms, last_error FROM sources
         UNION SELECT DISTINCT source, NULL::text, NULL::bigint, NULL::bigint, NULL::text FROM files WHERE source NOT IN (SELECT name FROM sources)
         ORDER BY name`,
      ),
      this.#pool.query<{ source: string; state: FileState; n: number }>(
        'SELECT source, state, count(*) AS n FROM files GROUP BY source, state',
      ),
      this.#pool.query<{ source: string; m: number | null }>(
        `SELECT source, max(mtime_ms) AS m FROM files
         WHERE state IN ('fetched', 'processing', 'processed', 'failed') AND local_path IS NOT NULL GROUP BY source`,
      ),
    ]);
    return sourceStatuses(sources.rows, counts.rows, newest.rows);
  }

  setOutbox(routes: readonly OutboxRoute[]): void {
    this.#outbox.set(routes);
  }

  /** One event per interested sink; one id for all of them. */
  #events(kind: EventKind, row: FileRow, extra: Partial<EventFact>): PendingEvent[] {
    const sinks = this.#outbox.sinks(kind, row.source);
    if (sinks.length === 0) return [];
    const fact: EventFact = { path: row.path, sizeBytes: row.size_bytes, mtimeMs: row.mtime_ms, ...extra };
    const text = JSON.stringify(fact);
    const id = randomUUID();
    return sinks.map((sink) => ({ id, sink, kind, source: row.source, fileId: row.id, fact: text }));
  }

  async pendingEvents(sink: string, limit: number): Promise<OutboxEvent[]> {
    const r = await this.#pool.query<{
      seq: number;
      id: string;
      sink: string;
      kind: EventKind;
      source: string;
      file_id: number;
      at_ms: number;
      fact: EventFact;
    }>(
      `SELECT seq, id, sink, kind, source, file_id, at_ms, fact FROM events
       WHERE sink = $1 AND sent_ms IS NULL ORDER BY seq LIMIT $2`,
      [sink, limit],
    );
    return r.rows.map((e) => ({
      seq: e.seq,
      id: e.id,
      sink: e.sink,
      kind: e.kind,
      source: e.source,
      fileId: e.file_id,
      atMs: e.at_ms,
      fact: e.fact,
    }));
  }

  async markEventsSent(sink: string, seqs: readonly number[], nowMs: number): Promise<void> {
    if (seqs.length === 0) return;
    await this.#pool.query(
      'UPDATE events SET sent_ms = $3 WHERE sink = $1 AND seq = ANY($2::bigint[]) AND sent_ms IS NULL',
      [sink, seqs, nowMs],
    );
  }

  async outboxStats(): Promise<OutboxStats[]> {
    const r = await this.#pool.query<{ sink: string; pending: number; oldest: number | null }>(
      'SELECT sink, count(*) AS pending, min(at_ms) AS oldest FROM events WHERE sent_ms IS NULL GROUP BY sink',
    );
    return this.#outbox.stats(r.rows);
  }

  async pruneSentEvents(beforeMs: number): Promise<number> {
    const r = await this.#pool.query('DELETE FROM events WHERE sent_ms IS NOT NULL AND sent_ms < $1', [beforeMs]);
    return r.rowCount ?? 0;
  }

  async prune(
    rules: PruneRules,
    opts: { readonly limit: number; readonly nowMs: number; readonly dryRun?: boolean },
  ): Promise<PruneResult> {
    let files = 0;
    let pluginRuns = 0;
    let more = false;
    await this.#tx(async (c) => {
      let budget = opts.limit;
      for (const w of rules.windows) {
        if (budget <= 0) {
          more = true;
          break;
        }
        // One row past the budget tells whether another batch is needed.
        const rows = (
          await c.query<{ id: number; path: string }>(
            `SELECT id, path FROM files WHERE source = $1 AND mtime_ms < $2
               AND (state IN ('processed', 'superseded', 'rejected', 'seen')
                 OR (state = 'failed' AND stage = 'fetch')
                 OR (state = 'quarantined' AND done_ms < $3))
             LIMIT $4`,
            [w.source, w.mtimeBeforeMs, rules.quarantinedBeforeMs, Math.min(budget + 1, Number.MAX_SAFE_INTEGER)],
          )
        ).rows;
        if (rows.length > budget) more = true;
        const batch = rows.slice(0, budget);
        const ids = batch.map((r) => r.id);
        if (ids.length > 0) {
          const n = await c.query<{ n: number }>(
            'SELECT count(*) AS n FROM plugin_runs WHERE file_id = ANY($1::bigint[])',
            [ids],
          );
          pluginRuns += n.rows[0]?.n ?? 0;
          files += ids.length;
          if (!opts.dryRun) {
            await c.query('DELETE FROM files WHERE id = ANY($1::bigint[])', [ids]);
            // A digest covering a deleted row must not answer for its directory again.
            await c.query('DELETE FROM listing_digests WHERE source = $1 AND dir = ANY($2::text[])', [
              w.source,
              [...new Set(batch.map((r) => dirOf(r.path)))],
            ]);
          }
        }
        budget -= Math.min(rows.length, budget);
        // A digest not rewritten for a whole window describes a directory no longer listed
        // differently; if it still is listed, the next listing diffs it entry by entry again.
        if (!opts.dryRun)
          await c.query('DELETE FROM listing_digests WHERE source = $1 AND stored_ms < $2', [
            w.source,
            w.mtimeBeforeMs,
          ]);
      }
      if (opts.dryRun) throw ROLLBACK;
    }).catch((err: unknown) => {
      if (err !== ROLLBACK) throw err;
    });
    return { files, pluginRuns, more };
  }

  async activity(nowMs: number, slotMs: number, slots: number): Promise<ActivitySlot[]> {
    // fetched_ms in (now - slots·slotMs, now] maps to slot 0 … slots-1 (integer division floors).
    const r = await this.#pool.query<{ source: string; slot: string; files: string; bytes: string }>(
      `SELECT source, (($1::bigint - fetched_ms) / $2::bigint) AS slot, COUNT(*) AS files, SUM(size_bytes) AS bytes
       FROM files WHERE fetched_ms > $3::bigint AND fetched_ms <= $1::bigint
       GROUP BY source, slot ORDER BY source, slot`,
      [Math.floor(nowMs), Math.max(1, Math.floor(slotMs)), Math.floor(nowMs - slots * slotMs)],
    );
    return r.rows.map((x) => ({
      source: x.source,
      slot: Number(x.slot),
      files: Number(x.files),
      bytes: Number(x.bytes),
    }));
  }

  async stats(): Promise<LedgerStats> {
    const r = await this.#pool.query<{ files: number; runs: number; bytes: number }>(
      `SELECT (SELECT count(*) FROM files) AS files, (SELECT count(*) FROM plugin_runs) AS runs,
         pg_database_size(current_database()) AS bytes`,
    );
    const row = r.rows[0] as { files: number; runs: number; bytes: number };
    return { fileRows: row.files, pluginRunRows: row.runs, bytes: row.bytes };
  }

  async liveFetches(): Promise<Array<{ id: number; sizeBytes: number; mtimeMs: number }>> {
    const r = await this.#pool.query<{ id: number; sizeBytes: number; mtimeMs: number }>(
      `SELECT id, size_bytes AS "sizeBytes", mtime_ms AS "mtimeMs" FROM files WHERE state IN ('fetching', 'seen', 'failed')`,
    );
    return r.rows;
  }

  async heartbeat(
    i: { id: string; owner: string; host: string; pid: number },
    nowMs: number,
    leaseMs?: number,
  ): Promise<void> {
    // A live lister keeps its sources between its cycles (a schedule longer than the lease).
    if (leaseMs !== undefined)
      await this.#pool.query('UPDATE listers SET lease_until_ms = $2 WHERE owner = $1 AND lease_until_ms >= $3', [
        i.owner,
        nowMs + leaseMs,
        nowMs,
      ]);
    const r = await this.#pool.query<{ prev: string | null }>(
      `WITH prev AS (SELECT owner FROM instances WHERE id = $1)
       , up AS (
         INSERT INTO instances (id, owner, host, pid, started_ms, heartbeat_ms) VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (id) DO UPDATE SET heartbeat_ms = $5, owner = excluded.owner, host = excluded.host,
           pid = excluded.pid,
           started_ms = CASE WHEN instances.owner = excluded.owner THEN instances.started_ms ELSE $5 END
         RETURNING 1)
       SELECT (SELECT owner FROM prev) AS prev FROM up`,
      [i.id, i.owner, i.host, i.pid, nowMs],
    );
    const prev = r.rows[0]?.prev ?? null;
    // The same instance id under a new owner: the earlier process of that id is gone (an id runs
    // once at a time); its claims are given back now rather than at their lease's end.
    if (prev !== null && prev !== i.owner)
      await this.#pool.query(
        `UPDATE files SET state = CASE WHEN state = 'fetching' THEN 'seen' ELSE 'fetched' END, claimed_by = NULL,
           lease_until_ms = NULL, updated_ms = $2
         WHERE state IN ('fetching', 'processing') AND claimed_by = $1`,
        [prev, nowMs],
      );
  }

  async sweepDead(nowMs: number, leaseMs: number): Promise<SweepResult> {
    return await this.#tx(async (c) => {
      // One sweeper at a time; the others skip this round instead of queueing behind it.
      const lock = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [
        String(SWEEP_LOCK_KEY),
      ]);
      if (!lock.rows[0]?.ok) return { swept: false, dead: [], fetches: 0, processing: 0 };
      const dead = (
        await c.query<{ id: string; owner: string }>(
          'DELETE FROM instances WHERE heartbeat_ms < $1 RETURNING id, owner',
          [nowMs - leaseMs],
        )
      ).rows;
      if (dead.length === 0) return { swept: true, dead: [], fetches: 0, processing: 0 };
      const owners = dead.map((d) => d.owner);
      const back = async (from: 'fetching' | 'processing', to: 'seen' | 'fetched') =>
        (
          await c.query(
            `UPDATE files SET state = $1, claimed_by = NULL, lease_until_ms = NULL, updated_ms = $2
             WHERE state = $3 AND claimed_by = ANY($4::text[])`,
            [to, nowMs, from, owners],
          )
        ).rowCount ?? 0;
      const fetches = await back('fetching', 'seen');
      const processing = await back('processing', 'fetched');
      await c.query('UPDATE listers SET lease_until_ms = 0 WHERE owner = ANY($1::text[])', [owners]);
      // Runs the dead instance had started count as attempts (as after a local crash).
      await c.query(
        `UPDATE plugin_runs SET state = 'failed', error_code = 'POLLER_PLUGIN_CRASHED', last_error = $1, next_retry_ms = $2
         WHERE state = 'running' AND file_id IN (SELECT id FROM files WHERE state = 'fetched')`,
        [CRASHED_RUN_MESSAGE, nowMs],
      );
      return { swept: true, dead: dead.map((d) => d.id).sort(), fetches, processing };
    });
  }

  async instances(): Promise<InstanceRecord[]> {
    const r = await this.#pool.query<{
      id: string;
      owner: string;
      host: string;
      pid: number;
      started_ms: number;
      heartbeat_ms: number;
      fetching: number;
      processing: number;
    }>(
      `SELECT i.*, count(f.id) FILTER (WHERE f.state = 'fetching') AS fetching,
         count(f.id) FILTER (WHERE f.state = 'processing') AS processing
       FROM instances i LEFT JOIN files f ON f.claimed_by = i.owner AND f.state IN ('fetching', 'processing')
       GROUP BY i.id ORDER BY i.id`,
    );
    return r.rows.map((i) => ({
      id: i.id,
      owner: i.owner,
      host: i.host,
      pid: i.pid,
      startedMs: i.started_ms,
      heartbeatMs: i.heartbeat_ms,
      fetching: i.fetching,
      processing: i.processing,
    }));
  }

  async acquireLister(source: string, owner: string, nowMs: number, leaseMs: number): Promise<number | null> {
    // Renewed by its holder; taken, with the next epoch, from a holder whose lease has run out.
    const r = await this.#pool.query<{ epoch: number }>(
      `INSERT INTO listers (source, owner, epoch, lease_until_ms) VALUES ($1, $2, 1, $3)
       ON CONFLICT (source) DO UPDATE SET owner = $2, lease_until_ms = $3,
         epoch = CASE WHEN listers.owner = $2 THEN listers.epoch ELSE listers.epoch + 1 END
       WHERE listers.owner = $2 OR listers.lease_until_ms < $4
       RETURNING epoch`,
      [source, owner, nowMs + leaseMs, nowMs],
    );
    return r.rows[0]?.epoch ?? null;
  }

  async claimDueForFetch(
    source: string,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<FileRecord[]> {
    const r = await this.#pool.query<FileRow>(
      `WITH c AS (
         SELECT id FROM files WHERE source = $1
           AND ((state = 'seen' AND ready_ms IS NOT NULL) OR (state = 'failed' AND stage = 'fetch' AND next_retry_ms <= $4))
         ORDER BY mtime_ms DESC LIMIT $5
         FOR UPDATE SKIP LOCKED)
       UPDATE files f SET state = 'fetching', claimed_by = $2, lease_until_ms = $3, updated_ms = $4
       FROM c WHERE f.id = c.id RETURNING f.*`,
      [source, owner, leaseUntilMs, nowMs, limit],
    );
    return r.rows.sort((a, b) => b.mtime_ms - a.mtime_ms || a.id - b.id).map(toRecord);
  }

  async listers(): Promise<Array<{ source: string; owner: string; epoch: number; leaseUntilMs: number }>> {
    const r = await this.#pool.query<{ source: string; owner: string; epoch: number; lease_until_ms: number }>(
      'SELECT source, owner, epoch, lease_until_ms FROM listers ORDER BY source',
    );
    return r.rows.map((x) => ({ source: x.source, owner: x.owner, epoch: x.epoch, leaseUntilMs: x.lease_until_ms }));
  }

  async leave(id: string): Promise<void> {
    // Its lister leases end now (kept, expired: the next holder gets the next epoch).
    await this.#pool.query(
      `WITH gone AS (DELETE FROM instances WHERE id = $1 RETURNING owner)
       UPDATE listers SET lease_until_ms = 0 WHERE owner IN (SELECT owner FROM gone)`,
      [id],
    );
  }

  async close(): Promise<void> {
    if (this.#pool.ended || this.#pool.ending) return;
    await this.#pool.end();
  }
}

interface PendingEvent {
  id: string;
  sink: string;
  kind: EventKind;
  source: string;
  fileId: number;
  fact: string;
}

/** Outbox rows of a transition, in the transition's transaction: one statement. */
async function insertEvents(c: Q, events: readonly PendingEvent[], nowMs: number): Promise<void> {
  if (events.length === 0) return;
  await c.query(
    `INSERT INTO events (id, sink, kind, source, file_id, at_ms, fact)
     SELECT id, sink, kind, source, file_id, $1, fact::jsonb
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[]) WITH ORDINALITY
       AS u(id, sink, kind, source, file_id, fact, ord)
     ORDER BY ord`,
    [
      nowMs,
      events.map((e) => e.id),
      events.map((e) => e.sink),
      events.map((e) => e.kind),
      events.map((e) => e.source),
      events.map((e) => e.fileId),
      events.map((e) => e.fact),
    ],
  );
}

function* chunks<T>(items: readonly T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += CHUNK) yield items.slice(i, i + CHUNK);
}

/** Claimed rows in the order their ids were asked for. */
function inOrder(ids: readonly number[], rows: readonly FileRow[]): FileRecord[] {
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.flatMap((id) => {
    const row = byId.get(id);
    return row ? [toRecord(row)] : [];
  });
}

/** Ids asked for that the write did not touch: their claim was lost. */
function lostOf(ids: readonly number[], rows: readonly { id: number }[]): number[] {
  const done = new Set(rows.map((r) => r.id));
  return ids.filter((id) => !done.has(id));
}

/**
 * The fencing check of a listing, inside its transaction: the lister row is share-locked, so a
 * takeover waits for this listing to commit, and a listing under an older epoch writes nothing.
 */
async function checkLister(c: Q, source: string, lister: { owner: string; epoch: number }): Promise<void> {
  const r = await c.query<{ owner: string; epoch: number }>(
    'SELECT owner, epoch FROM listers WHERE source = $1 FOR SHARE',
    [source],
  );
  const row = r.rows[0];
  if (row?.owner === lister.owner && row.epoch === lister.epoch) return;
  throw new TransientError(
    'POLLER_LEDGER_LISTER_LOST',
    `${source}: another instance lists this source now (lease epoch ${row?.epoch ?? 'none'}, this listing held ${lister.epoch}); nothing recorded`,
  );
}

function unreachable(displayUrl: string, err: unknown): PermanentError {
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
