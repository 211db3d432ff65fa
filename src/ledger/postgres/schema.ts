/**
 * The PostgreSQL schema at open: migrated under a session advisory lock (every host starting at
 * once waits, each finds the steps already done), or, read-only, checked to be current.
 */
import type pg from 'pg';
import { PermanentError } from '../../errors.js';
import { MIGRATION_LOCK_KEY, PG_MIGRATIONS } from './migrations.js';
import type { LedgerPool, Q } from './pool.js';

async function schemaVersion(c: Q): Promise<number> {
  await c.query('CREATE TABLE IF NOT EXISTS poller_schema (version integer PRIMARY KEY, applied_ms bigint NOT NULL)');
  const r = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM poller_schema');
  return r.rows[0]?.v ?? 0;
}

export async function checkSchema(pool: LedgerPool): Promise<void> {
  const r = await pool.query<{ t: string | null }>(`SELECT to_regclass('poller_schema')::text AS t`);
  const version =
    r.rows[0]?.t === null
      ? 0
      : ((await pool.query<{ v: number | null }>('SELECT max(version) AS v FROM poller_schema')).rows[0]?.v ?? 0);
  if (version !== PG_MIGRATIONS.length)
    throw new PermanentError(
      'POLLER_LEDGER_SCHEMA_MISMATCH',
      `ledger schema version ${version}, this poller reads ${PG_MIGRATIONS.length}; run \`poller check\` or start the daemon once to migrate it`,
    );
}

export async function migrate(pool: LedgerPool): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('SELECT pg_advisory_lock($1)', [String(MIGRATION_LOCK_KEY)]);
    try {
      const current = await schemaVersion(c);
      if (current > PG_MIGRATIONS.length)
        throw new PermanentError(
          'POLLER_LEDGER_SCHEMA_TOO_NEW',
          `ledger schema version ${current} is newer than this poller understands (${PG_MIGRATIONS.length}); upgrade poller`,
        );
      for (let step = current; step < PG_MIGRATIONS.length; step++) await applyStep(c, step);
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [String(MIGRATION_LOCK_KEY)]).catch(() => undefined);
    }
  } finally {
    c.release();
  }
}

async function applyStep(c: pg.PoolClient, step: number): Promise<void> {
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
