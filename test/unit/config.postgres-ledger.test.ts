import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { isPostgresConnInfo, parsePgConnInfo } from '../../src/util/postgres-conninfo.js';

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

describe('config: a PostgreSQL ledger on several hosts (failover)', () => {
  it("reads libpq's URL form: hosts in order, ports, read-write by default, shown without the user", () => {
    const c = buildConfig(
      {
        ...base,
        ledger: 'postgres://poller@db-a:5432,db-b:5433/poller?target_session_attrs=read-write&sslmode=require',
      },
      '/etc/poller',
      {},
    );
    expect(c.postgres?.displayUrl).toBe(
      'postgres://db-a:5432,db-b:5433/poller?sslmode=require&target_session_attrs=read-write',
    );
    expect(parsePgConnInfo(c.postgres?.url ?? '')).toEqual({
      hosts: [
        { host: 'db-a', port: 5432 },
        { host: 'db-b', port: 5433 },
      ],
      target: 'read-write',
      baseUrl: 'postgres://poller@db-a:5432/poller?sslmode=require',
      displayUrl: 'postgres://db-a:5432,db-b:5433/poller?sslmode=require&target_session_attrs=read-write',
    });
    // Several hosts without target_session_attrs: still the writable one (libpq's `any` would take a standby).
    expect(parsePgConnInfo('postgres://u@a,b/db').target).toBe('read-write');
    expect(parsePgConnInfo('postgres://u@a/db').target).toBe('any');
    expect(parsePgConnInfo('postgresql://u@[::1]:5432,b/db?target_session_attrs=primary')).toMatchObject({
      hosts: [{ host: '::1', port: 5432 }, { host: 'b' }],
      target: 'primary',
      baseUrl: 'postgresql://u@[::1]:5432/db',
    });
  });

  it('reads the query form (?host=a,b&port=...) and the keyword/value form (host=a,b port=...)', () => {
    expect(parsePgConnInfo('postgres://poller@/poller?host=a,b&port=5432,5433').hosts).toEqual([
      { host: 'a', port: 5432 },
      { host: 'b', port: 5433 },
    ]);
    expect(parsePgConnInfo('postgres://poller@/poller?host=a,b&port=6000').hosts).toEqual([
      { host: 'a', port: 6000 },
      { host: 'b', port: 6000 },
    ]);
    const kv = "host=db-a,db-b port=5432,5433 dbname=poller user=poller application_name='poller x'";
    expect(isPostgresConnInfo(kv)).toBe(true);
    expect(isPostgresConnInfo('./ledger.db')).toBe(false);
    const c = buildConfig({ ...base, ledger: kv }, '/etc/poller', {});
    expect(c.postgres?.url).toBe(kv);
    expect(c.postgres?.displayUrl).toBe(
      'postgres://db-a:5432,db-b:5433/poller?application_name=poller+x&target_session_attrs=read-write',
    );
    expect(parsePgConnInfo(kv)).toMatchObject({
      hosts: [
        { host: 'db-a', port: 5432 },
        { host: 'db-b', port: 5433 },
      ],
      baseUrl: 'postgres://poller@db-a:5432/poller?application_name=poller+x',
    });
  });

  it('a bad multi-host string is one line naming the problem and the fix', () => {
    expect(issuesOf({ ...base, ledger: 'postgres://u@a:5432,b:99999/db' })).toEqual([
      'ledger: host "b:99999": port "99999" is not a number 1-65535',
    ]);
    expect(issuesOf({ ...base, ledger: 'postgres://u@a,b/db?target_session_attrs=standby' })).toEqual([
      'ledger: target_session_attrs=standby: the ledger writes, so it needs the primary; use read-write',
    ]);
    expect(issuesOf({ ...base, ledger: 'postgres://u@a,b/db?target_session_attrs=fast' })).toEqual([
      'ledger: target_session_attrs=fast is not a libpq value; use read-write, primary or any',
    ]);
    expect(issuesOf({ ...base, ledger: 'postgres://u@/db?host=a,b,c&port=1,2' })).toEqual([
      'ledger: 3 host(s) but 2 ports; give one port, or one per host',
    ]);
    expect(issuesOf({ ...base, ledger: 'postgres://u@a:5432,b/' })).toEqual([
      'ledger: name the database: postgres://user@host/database',
    ]);
    const pw = issuesOf({ ...base, ledger: 'host=a,b dbname=p user=u password=hunter2' });
    expect(pw).toEqual([
      'ledger: the connection string contains a password; move it to `ledger.passwordFile` (or PGPASSWORD / PGPASSFILE)',
    ]);
    expect(issuesOf({ ...base, ledger: { url: 'mysql://u@a,b/db' } })).toEqual([
      'ledger.url: scheme "mysql" is not postgres or postgresql',
    ]);
    for (const issues of [pw]) expect(issues.join()).not.toContain('hunter2');
  });
});
