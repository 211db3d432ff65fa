import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const base = {
  landing: './landing',
  sources: [{ name: 'radar', url: 'ftp://ingest@radar.example.org/out', include: '**/*.bufr' }],
};

function issuesOf(doc: unknown): string[] {
  try {
    buildConfig(doc, '/etc/poller', {});
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('config: a PostgreSQL ledger', () => {
  it('a postgres URL is a PostgreSQL ledger, shown without its user; a path stays a SQLite file', () => {
    const c = buildConfig({ ...base, ledger: 'postgres://poller@db.example.org/poller' }, '/etc/poller', {});
    expect(c.postgres).toEqual({
      url: 'postgres://poller@db.example.org/poller',
      displayUrl: 'postgres://db.example.org/poller',
      poolSize: 4,
    });
    expect(c.ledger).toBe('postgres://db.example.org/poller');
    const s = buildConfig({ ...base, ledger: './ledger.db' }, '/etc/poller', {});
    expect(s.postgres).toBeUndefined();
    expect(s.ledger).toBe('/etc/poller/ledger.db');
  });

  it('the object form reads passwordFile (relative to the config) and takes a pool size', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-pgcfg-'));
    writeFileSync(path.join(dir, 'pw'), 's3cret\n');
    const c = buildConfig(
      { ...base, ledger: { url: 'postgresql://poller@db:5433/poller?sslmode=require', passwordFile: 'pw', pool: 8 } },
      dir,
      {},
    );
    expect(c.postgres).toMatchObject({
      password: 's3cret',
      poolSize: 8,
      displayUrl: 'postgresql://db:5433/poller?sslmode=require',
    });
    const env = buildConfig({ ...base, ledger: { url: 'postgres://u@db/p', password: '${PGPW}' } }, dir, {
      PGPW: 'x1',
    });
    expect(env.postgres?.password).toBe('x1');
  });

  it('refuses a password in the URL, a URL without a database, and both password forms', () => {
    const inUrl = issuesOf({ ...base, ledger: 'postgres://poller:hunter2@db/poller' });
    expect(inUrl).toEqual([
      'ledger: the URL contains a password; move it to `ledger.passwordFile` (or PGPASSWORD / PGPASSFILE) so it stays out of logs and the process list',
    ]);
    expect(inUrl.join()).not.toContain('hunter2');
    expect(issuesOf({ ...base, ledger: 'postgres://poller@db/' })).toEqual([
      'ledger: name the database: postgres://user@host/database',
    ]);
    expect(issuesOf({ ...base, ledger: { url: 'postgres://u@db/p?password=x' } })[0]).toMatch(
      /^ledger\.url: the URL contains a password/,
    );
    expect(issuesOf({ ...base, ledger: { url: 'postgres://u@db/p', password: 'a', passwordFile: 'b' } })).toContain(
      'ledger.password: give password or passwordFile, not both',
    );
    expect(issuesOf({ ...base, ledger: { url: 'postgres://u@db/p', passwordFile: 'nope' } })[0]).toMatch(
      /^ledger\.passwordFile: cannot read \/etc\/poller\/nope \(ENOENT\)/,
    );
  });
});
