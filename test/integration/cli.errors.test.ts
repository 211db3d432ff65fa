import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

describe('CLI errors', () => {
  it('a wrong password: one clear error naming the source, exit 1, no retry storm, the password nowhere', async () => {
    const secret = 'Wr0ng-S3cret-7f3a9';
    env = await startEngineEnv({ password: secret });
    await env.put('a.bufr', 'a');
    const started = Date.now();
    const r = await env.cli(['run-once']);
    expect(r.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    const errorLines = r.stderr.split('\n').filter((l) => l.includes('"level":50'));
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toMatch(/radar/);
    expect(errorLines[0]).toMatch(/source\.paused/);
    expect(r.stdout).toMatch(/radar .*ERROR/);
    expect(env.ftp.logins()).toEqual({ tls: 0, plain: 0 });
    for (const text of [r.stdout, r.stderr, readFileSync(env.ledgerPath).toString('latin1')])
      expect(text).not.toContain(secret);
    const status = await env.cli(['status', '--json']);
    expect(JSON.parse(status.stdout).sources[0].lastError).toMatch(/login|password|credentials/i);
  });

  it('an invalid config: every problem on its own line, by path, exit 2', async () => {
    env = await startEngineEnv();
    const bad = path.join(env.dir, 'bad.yaml');
    writeFileSync(bad, 'landing: ./l\nledger: ./l.db\nsources:\n  - name: x\n    url: ftpx://h/\n    minAge: soon\n');
    const r = await env.cli(['run-once', '--config', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      'poller: sources[0].url: scheme "ftpx" is not supported; use ftp, ftps, sftp, file, http, https, s3, wis2+mqtt, wis2+mqtts or wis2+wss',
      'poller: sources[0].minAge: "soon" is not a duration; write e.g. 20s, 5m, 6h',
    ]);
  });

  it('an unknown command or flag is a usage error, exit 2', async () => {
    env = await startEngineEnv();
    expect((await env.cli(['frobnicate'])).code).toBe(2);
    expect((await env.cli(['run-once', '--no-such-flag'])).code).toBe(2);
  });
});
