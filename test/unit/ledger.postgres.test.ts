/** What only the PostgreSQL ledger has: migrations shared by hosts, connection errors, read-only opening. */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { PollerError } from '../../src/errors.js';
import { PG_MIGRATIONS } from '../../src/ledger/postgres/migrations.js';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { freePort } from '../helpers/free-port.js';
import { freshDatabase, pgAvailable } from '../helpers/postgres.js';

const opened: PostgresLedger[] = [];
afterEach(async () => {
  for (const l of opened.splice(0)) await l.close();
});

async function open(url: string, readonly = false): Promise<PostgresLedger> {
  const l = await PostgresLedger.open({ url, displayUrl: url, readonly });
  opened.push(l);
  return l;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

describe.skipIf(!pgAvailable)('postgres ledger', () => {
  it('eight hosts starting at once on a new database migrate it once', async () => {
    const url = await freshDatabase();
    await Promise.all(Array.from({ length: 8 }, () => open(url)));
    const rows = await query<{ version: number }>(url, 'SELECT version FROM poller_schema ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
    expect((await opened[0]?.stats())?.fileRows).toBe(0);
  });

  it('a read-only command refuses an unmigrated database; a newer schema is refused by all', async () => {
    const url = await freshDatabase();
    await expect(open(url, true)).rejects.toMatchObject({ code: 'POLLER_LEDGER_SCHEMA_MISMATCH' });
    const l = await open(url);
    await l.close();
    expect(await open(url, true)).toBeInstanceOf(PostgresLedger);
    await query(url, `INSERT INTO poller_schema (version, applied_ms) VALUES (${PG_MIGRATIONS.length + 1}, 0)`);
    await expect(open(url)).rejects.toMatchObject({ code: 'POLLER_LEDGER_SCHEMA_TOO_NEW' });
  });

  it('an unreachable server is one error naming the ledger, without the password', async () => {
    const port = await freePort();
    const url = `postgres://poller@127.0.0.1:${port}/poller`;
    const err = (await PostgresLedger.open({ url, displayUrl: url, password: 'hunter2-secret' }).catch(
      (e: unknown) => e,
    )) as PollerError;
    expect(err.code).toBe('POLLER_LEDGER_UNREACHABLE');
    expect(err.message).toContain(`ledger postgres://poller@127.0.0.1:${port}/poller:`);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message.split('\n')).toHaveLength(1);
    expect(JSON.stringify({ m: err.message, s: err.stack })).not.toContain('hunter2');
  });
});
