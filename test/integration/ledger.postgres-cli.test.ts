import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { freePort } from '../helpers/free-port.js';
import { freshDatabase, passwordDatabase, pgAvailable } from '../helpers/postgres.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

describe.skipIf(!pgAvailable)('the CLI on a PostgreSQL ledger', () => {
  it('run-once records in PostgreSQL: a second run fetches nothing; status and files read it', async () => {
    const url = await freshDatabase();
    env = await startEngineEnv({ config: { ledger: url } });
    await env.put('a.bufr', 'aaa');
    await env.put('d/b.bufr', 'bbbb');
    const first = await env.cli(['run-once']);
    expect(first.code, first.stderr).toBe(0);
    expect(env.ftp.retrieved()).toHaveLength(2);
    expect((await env.cli(['run-once'])).code).toBe(0);
    expect(env.ftp.retrieved()).toHaveLength(2);
    const statusRun = await env.cli(['status', '--json']);
    expect(statusRun.code, statusRun.stderr).toBe(0);
    const status = JSON.parse(statusRun.stdout);
    expect(status.sources[0]).toMatchObject({ name: 'radar' });
    expect(status.ledger).toMatchObject({ fileRows: 2, pluginRunRows: 2 });
    const files = await env.cli(['files', '--json']);
    expect(
      JSON.parse(files.stdout)
        .files.map((f: { path: string; state: string }) => [f.path, f.state])
        .sort(),
    ).toEqual([
      ['a.bufr', 'processed'],
      ['d/b.bufr', 'processed'],
    ]);
  });

  it('the password comes from ledger.passwordFile or PGPASSWORD, and never shows in errors', async () => {
    const url = await passwordDatabase('poller_pw', 'S3cret-pw');
    env = await startEngineEnv();
    await env.put('a.bufr', 'aaa');
    const pwFile = path.join(env.dir, 'ledger.pw');
    writeFileSync(pwFile, 'S3cret-pw\n');
    const setLedger = (ledger: unknown) => {
      const doc = JSON.parse(readFileSync((env as EngineEnv).configPath, 'utf8'));
      writeFileSync((env as EngineEnv).configPath, JSON.stringify({ ...doc, ledger }, null, 2));
    };
    // No password anywhere: the server refuses, one line names the ledger without userinfo.
    setLedger(url);
    const refused = await env.cli(['run-once'], { env: { PGPASSWORD: '', PGPASSFILE: path.join(env.dir, 'none') } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('POLLER_LEDGER_UNREACHABLE');
    expect(refused.stderr).toContain(`ledger ${url.replace('poller_pw@', '')}`);
    expect(refused.stderr).toMatch(/client password must be a string|password authentication failed/);
    // A wrong one from PGPASSWORD: refused, and not echoed.
    const wrong = await env.cli(['run-once'], { env: { PGPASSWORD: 'wrong-Pw-42' } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/password authentication failed for user "poller_pw"/);
    expect(wrong.stderr + wrong.stdout).not.toContain('wrong-Pw-42');
    // The right one from PGPASSWORD, then from passwordFile.
    expect((await env.cli(['run-once'], { env: { PGPASSWORD: 'S3cret-pw' } })).code).toBe(0);
    setLedger({ url, passwordFile: pwFile });
    await env.put('b.bufr', 'bbb');
    const ok = await env.cli(['run-once'], { env: { PGPASSWORD: '' } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(env.ftp.retrieved()).toHaveLength(2);
    expect(ok.stderr + ok.stdout).not.toContain('S3cret-pw');
  });

  it('a database unreachable at start is one clear error and exit 1', async () => {
    const port = await freePort();
    env = await startEngineEnv({ config: { ledger: `postgres://poller@127.0.0.1:${port}/poller` } });
    const r = await env.cli(['run-once']);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`ledger postgres://127.0.0.1:${port}/poller: connect ECONNREFUSED`);
  });

  it('a password in the ledger URL is a config error naming the fix', async () => {
    env = await startEngineEnv({ config: { ledger: 'postgres://poller:hunter2@127.0.0.1/poller' } });
    const r = await env.cli(['run-once']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ledger: the URL contains a password; move it to `ledger.passwordFile`/);
    expect(r.stderr).not.toContain('hunter2');
  });

  it('ledger migrate copies a SQLite ledger into PostgreSQL: nothing is fetched again, new files go on', async () => {
    const url = await freshDatabase();
    env = await startEngineEnv();
    await env.put('a.bufr', 'aaa');
    await env.put('d/b.bufr', 'bbbb');
    expect((await env.cli(['run-once'])).code).toBe(0);
    const migrated = await env.cli(['ledger', 'migrate', '--to', url, '--json']);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(JSON.parse(migrated.stdout)).toMatchObject({ files: 2, pluginRuns: 2, sources: 1 });
    const doc = JSON.parse(readFileSync(env.configPath, 'utf8'));
    writeFileSync(env.configPath, JSON.stringify({ ...doc, ledger: url }, null, 2));
    await env.put('c.bufr', 'ccccc');
    expect((await env.cli(['run-once'])).code).toBe(0);
    expect(
      env.ftp
        .retrieved()
        .map((p) => path.basename(p))
        .sort(),
    ).toEqual(['a.bufr', 'b.bufr', 'c.bufr']);
    const files = JSON.parse((await env.cli(['files', '--json'])).stdout).files as Array<{
      id: number;
      path: string;
      state: string;
    }>;
    expect(files.map((f) => [f.id, f.path, f.state])).toEqual([
      [3, 'c.bufr', 'processed'],
      ...files.slice(1).map((f) => [f.id, f.path, 'processed']),
    ]);
    const why = await env.cli(['why', 'a.bufr']);
    expect(why.stdout).toMatch(/processed/);
    // Into a ledger that has rows already: refused, nothing copied.
    writeFileSync(env.configPath, JSON.stringify(doc, null, 2));
    const again = await env.cli(['ledger', 'migrate', '--to', url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('POLLER_LEDGER_TARGET_NOT_EMPTY');
  });
});
