import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const HOUR = 3_600_000;

/** Rewrite the env's config with top-level keys changed. */
function setConfig(e: EngineEnv, over: Record<string, unknown>): void {
  const doc = JSON.parse(readFileSync(e.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(e.configPath, JSON.stringify({ ...doc, ...over }, null, 2));
}

describe('ledger retention through the CLI', () => {
  it('prune deletes versions past the window (dry run first); a pruned file is not fetched again', async () => {
    env = await startEngineEnv();
    await env.put('old.bufr', 'old', Date.now() - 5 * HOUR);
    await env.put('recent.bufr', 'recent', Date.now() - HOUR);
    expect((await env.cli(['run-once'])).code).toBe(0);
    expect(env.ftp.retrieved()).toHaveLength(2);

    // keep 3h: old.bufr (5 h) is past the window plus the 1 h margin; recent.bufr is not.
    setConfig(env, { retention: { keep: '3h' } });
    const dry = await env.cli(['ledger', 'prune', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, files: 1, pluginRuns: 1, after: { fileRows: 2 } });
    const real = await env.cli(['ledger', 'prune']);
    expect(real.code).toBe(0);
    expect(real.stdout).toMatch(/pruned 1 file version\(s\) and 1 plugin run\(s\)/);
    expect(real.stdout).toMatch(/ledger: 1 file version\(s\), 1 plugin run\(s\), [\d.]+ MB on disk/);

    // The listing skips old.bufr now (retention.keep acts as maxAge): nothing is fetched twice.
    expect((await env.cli(['run-once'])).code).toBe(0);
    expect(env.ftp.retrieved()).toHaveLength(2);
    const why = await env.cli(['why', 'old.bufr']);
    expect(why.stdout).toMatch(/older than maxAge \(3h\)/);
    const status = JSON.parse((await env.cli(['status', '--json'])).stdout);
    expect(status.ledger).toMatchObject({ fileRows: 1, pluginRunRows: 1 });
  });

  it('the daemon says once at start that the ledger grows without bound when nothing limits it', async () => {
    env = await startEngineEnv({ source: { every: '1h' }, config: { log: { level: 'info' } } });
    const child = env.spawnCli(['run']);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor(() => out.includes('daemon.started'), { timeoutMs: 15_000, what: 'daemon start' });
    const lines = out.split('\n').filter((l) => l.includes('ledger.unbounded'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/grows without bound for radar: set maxAge on these sources or retention\.keep/);
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('close', resolve));
  });
});
