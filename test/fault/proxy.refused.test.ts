/**
 * A proxy that refuses, end to end: the source is paused with one clear log line, nothing is
 * lost or counted as a failed attempt, and once the credentials are right every file is fetched
 * exactly once. The proxy's credentials (from a file, or in ALL_PROXY) never reach stdout, the
 * log, the status output, the ledger or `ps`.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { proxyAvailability, type RunningProxy, startDante, startSquid } from '../helpers/proxies.js';
import { waitFor } from '../helpers/wait-for.js';

const run = promisify(execFile);
const availability = proxyAvailability();
if (!availability.available && process.env['CI'] === 'true') throw new Error(availability.reason);

function forms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64')];
}

describe.skipIf(!availability.available)('a refusing proxy', () => {
  let dante: RunningProxy;
  let env: EngineEnv | undefined;

  beforeAll(async () => {
    dante = await startDante({ auth: true });
  }, 30_000);
  afterAll(async () => {
    await env?.close();
    await dante?.stop();
  });

  it('pauses the source, loses nothing, and fetches every file once the credentials are right', async () => {
    const credFile = 'proxy.cred';
    env = await startEngineEnv({
      source: { proxy: `socks5://127.0.0.1:${dante.port}`, proxyCredentialsFile: credFile },
    });
    const e = env;
    const wrong = `wrong-${dante.password}`;
    await writeFile(path.join(e.dir, credFile), `${dante.user}:${wrong}\n`, { mode: 0o600 });
    for (let i = 0; i < 3; i++) await e.put(`v/${i}.bufr`, `volume ${i}`);

    const refused = await e.cli(['run-once', '--json', '--log-level', 'info']);
    expect(refused.code, refused.stderr).toBe(1);
    const summary = JSON.parse(refused.stdout) as {
      sources: Array<{ fetched: number; error?: { code: string; message: string; paused?: boolean } }>;
    };
    expect(summary.sources[0]?.error).toMatchObject({ code: 'POLLER_PROXY_REFUSED', paused: true });
    expect(summary.sources[0]?.fetched).toBe(0);
    // One clear line: the pause, naming the proxy (no credentials) and the fix.
    const paused = refused.stderr.split('\n').filter((l) => l.includes('"source.paused"'));
    expect(paused).toHaveLength(1);
    expect(paused[0]).toContain(`socks5://127.0.0.1:${dante.port}`);
    expect(paused[0]).toContain('proxyCredentialsFile');
    const ledger = e.ledger();
    expect(await ledger.files({ source: 'radar', state: 'failed' })).toEqual([]);
    expect(await ledger.files({ source: 'radar', state: 'quarantined' })).toEqual([]);

    await writeFile(path.join(e.dir, credFile), `${dante.user}:${dante.password}\n`, { mode: 0o600 });
    const ok = await e.cli(['run-once', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect((JSON.parse(ok.stdout) as { sources: Array<{ fetched: number }> }).sources[0]?.fetched).toBe(3);
    for (let i = 0; i < 3; i++) {
      expect(await readFile(path.join(e.landing, 'radar', 'v', `${i}.bufr`), 'utf8')).toBe(`volume ${i}`);
    }
    expect(await dante.log()).toContain(`127.0.0.1.${e.ftp.port}`);
    const again = await e.cli(['run-once', '--json']);
    expect((JSON.parse(again.stdout) as { sources: Array<{ fetched: number }> }).sources[0]?.fetched).toBe(0);

    for (const text of [refused.stdout, refused.stderr, ok.stdout, ok.stderr]) {
      for (const s of [wrong, dante.password ?? '']) for (const f of forms(s)) expect(text).not.toContain(f);
    }
  }, 60_000);

  it('a proxy whose rules deny the destination: one clear line, the source paused, no attempt counted, twice', async () => {
    await env?.close();
    const squid = await startSquid({ deny: true });
    try {
      env = await startEngineEnv({ source: { proxy: `http://127.0.0.1:${squid.port}` } });
      const e = env;
      for (let i = 0; i < 2; i++) await e.put(`d/${i}.bufr`, `file ${i}`);
      for (let round = 0; round < 2; round++) {
        const denied = await e.cli(['run-once', '--json', '--log-level', 'info']);
        expect(denied.code, denied.stderr).toBe(1);
        const summary = JSON.parse(denied.stdout) as {
          sources: Array<{ fetched: number; error?: { code: string; message: string; paused?: boolean } }>;
        };
        expect(summary.sources[0]?.error).toMatchObject({ code: 'POLLER_PROXY_REFUSED', paused: true });
        expect(summary.sources[0]?.fetched).toBe(0);
        const paused = denied.stderr.split('\n').filter((l) => l.includes('"source.paused"'));
        expect(paused).toHaveLength(1);
        expect(paused[0]).toContain(`http://127.0.0.1:${squid.port}`);
        const ledger = e.ledger();
        expect(await ledger.files({ source: 'radar', state: 'failed' })).toEqual([]);
        expect(await ledger.files({ source: 'radar', state: 'quarantined' })).toEqual([]);
        expect((await ledger.files({ source: 'radar' })).every((f) => f.fetchAttempts === 0)).toBe(true);
      }
      // squid saw the CONNECT and denied it by its rules (TCP_DENIED/403), not a network failure.
      const denied = await waitFor(
        async () => ((await squid.log()).match(/TCP_DENIED\/403 \d+ CONNECT 127\.0\.0\.1:\d+/g) ?? []).length >= 2,
        { timeoutMs: 10_000, intervalMs: 100, what: "squid's TCP_DENIED lines" },
      );
      expect(denied).toBe(true);
    } finally {
      await squid.stop();
    }
  }, 60_000);

  it('credentials in ALL_PROXY stay out of stdout, the log, status, the ledger and ps', async () => {
    await env?.close();
    env = await startEngineEnv({});
    const e = env;
    for (let i = 0; i < 2; i++) await e.put(`w/${i}.bufr`, `volume ${i}`);
    const password = dante.password ?? '';
    const proxyEnv = { ALL_PROXY: `socks5h://${dante.user}:${encodeURIComponent(password)}@127.0.0.1:${dante.port}` };
    const child = e.spawnCli(['run-once', '--json', '--log-level', 'debug'], proxyEnv);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    let running = true;
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (c) => {
        running = false;
        resolve(c);
      }),
    );
    let psText = '';
    while (running) psText += (await run('ps', ['-eo', 'args'])).stdout;
    expect(await exited, out).toBe(0);
    expect(out).toContain(`socks5h://127.0.0.1:${dante.port} (from ALL_PROXY)`);
    const status = await e.cli(['status', '--json'], { env: proxyEnv });
    const files = await e.cli(['files'], { env: proxyEnv });
    expect(await dante.log()).toContain(`127.0.0.1.${e.ftp.port}`);
    const written: string[] = [];
    for (const d of await readdir(e.dir, { withFileTypes: true, recursive: true })) {
      if (d.isFile()) written.push((await readFile(path.join(d.parentPath, d.name))).toString('latin1'));
    }
    for (const f of forms(password)) {
      for (const text of [out, psText, status.stdout, status.stderr, files.stdout, ...written]) {
        expect(text).not.toContain(f);
      }
    }
  }, 60_000);
});
