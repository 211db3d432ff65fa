import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freshDatabase, pgAvailable } from '../helpers/postgres.js';

describe.skipIf(!pgAvailable)('PostgreSQL test harness', () => {
  it('gives each test a database of its own on one server', async () => {
    const [a, b] = await Promise.all([freshDatabase(), freshDatabase()]);
    expect(a).not.toBe(b);
    const ca = new pg.Client({ connectionString: a });
    await ca.connect();
    await ca.query('CREATE TABLE only_here (x int)');
    await ca.end();
    const cb = new pg.Client({ connectionString: b });
    await cb.connect();
    const r = await cb.query(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'only_here'`);
    const v = await cb.query('SHOW server_version');
    await cb.end();
    expect(r.rows[0].n).toBe(0);
    expect(String(v.rows[0].server_version)).toMatch(/^15\./);
  });
});
