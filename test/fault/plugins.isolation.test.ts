/**
 * Plugins that spin, run out of memory, end their process or kill the poller: each is
 * recorded against its file, the poller goes on (transfers, other plugins, /healthz), and no
 * file can crash-loop the poller.
 */
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, editConfig, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';
import { parsePrometheusText } from '../helpers/prometheus-text.js';
import { readRecords } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
let daemon: Daemon | undefined;
afterEach(async () => {
  daemon?.child.kill('SIGKILL');
  await daemon?.exited;
  daemon = undefined;
  await env?.close();
  env = undefined;
});

const plugin = (name: string) => path.join(FIXTURE_PLUGINS, name);

/** A file in a local source's directory, an hour old: taken at first sight. */
function putLocal(dir: string, rel: string, content: string): void {
  const file = path.join(dir, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  const t = new Date(Date.now() - 3_600_000);
  utimesSync(file, t, t);
}

describe.each(['worker', 'process'] as const)('isolate: %s', (isolate) => {
  it('a spin is stopped at its timeout while transfers, other plugins and /healthz go on; out of memory and a dead host are recorded; the daemon goes on', async () => {
    env = await startEngineEnv({
      source: { every: '200ms' },
      plugins: (_dir, recordLog) => [
        { use: plugin('spins.mjs'), match: '**/spin.bufr', timeout: '2s', maxAttempts: 1, isolate },
        { use: plugin('allocates.mjs'), match: '**/oom.bufr', memoryLimit: '64MiB', isolate },
        { use: plugin('exits.mjs'), match: '**/exit.bufr', maxAttempts: 1, isolate },
        { use: plugin('record.mjs'), match: ['**/a/*.bufr', '**/spin.bufr'], options: { log: recordLog }, isolate },
      ],
    });
    const e = env;
    // A second source: its cycles go on while the first one's cycle waits for the spin.
    const incoming = path.join(e.dir, 'incoming');
    mkdirSync(incoming);
    await editConfig(e, (c) => {
      const [src] = c['sources'] as Array<Record<string, unknown>>;
      return {
        ...c,
        http: { host: '127.0.0.1', port: 0 },
        sources: [src, { name: 'local', url: pathToFileURL(incoming).href, include: ['**/*.bufr'], every: '200ms' }],
      };
    });
    await e.put('spin.bufr', 'spin');
    daemon = await startDaemon(e);
    const d = daemon;
    const httpPort = Number(d.lines().find((l) => l.event === 'daemon.started')?.['httpPort']);
    const spinning = await d.waitForEvent('test.spinning', () => true, 15_000);
    for (let i = 0; i < 4; i++) putLocal(incoming, `a/${i}.bufr`, `file ${i}`);
    putLocal(incoming, 'oom.bufr', 'x');
    putLocal(incoming, 'exit.bufr', 'x');

    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect(health.status).toBe(200);
    const linesWhenHealthy = d.lines().length;
    const spinFailed = await d.waitForEvent('plugin.failed', (l) => l['plugin'] === 'spins', 15_000);
    expect(spinFailed['err']).toMatchObject({ code: 'POLLER_PLUGIN_TIMEOUT' });
    const during = d.lines().slice(d.lines().indexOf(spinning), d.lines().indexOf(spinFailed));
    // Work done while the plugin spun: /healthz answered, files landed, another plugin ran.
    expect(linesWhenHealthy).toBeLessThanOrEqual(d.lines().indexOf(spinFailed));
    expect(during.filter((l) => l.event === 'file.fetched' && l['source'] === 'local').length).toBeGreaterThan(0);
    expect(during.filter((l) => l.event === 'plugin.succeeded' && l['plugin'] === 'record').length).toBeGreaterThan(0);
    // ctx.log lines come back with the run's bindings.
    expect(spinning).toMatchObject({ plugin: 'spins', source: 'radar', path: 'spin.bufr', attempt: 1 });

    const ledger = e.ledger();
    const state = async (source: string, p: string) => (await ledger.history(source, p))[0];
    await waitFor(
      async () =>
        (await state('local', 'oom.bufr'))?.state === 'quarantined' &&
        (await state('local', 'exit.bufr'))?.state === 'quarantined' &&
        (await state('radar', 'spin.bufr'))?.state === 'quarantined',
      { timeoutMs: 20_000, what: 'the three bad files quarantined' },
    );
    expect(await state('local', 'oom.bufr')).toMatchObject({ errorCode: 'POLLER_PLUGIN_OUT_OF_MEMORY' });
    expect(await state('local', 'exit.bufr')).toMatchObject({ errorCode: 'POLLER_PLUGIN_CRASHED' });
    expect(await state('radar', 'spin.bufr')).toMatchObject({ errorCode: 'POLLER_PLUGIN_TIMEOUT' });

    // The daemon goes on: a file that comes after all this is processed by a fresh worker.
    putLocal(incoming, 'a/late.bufr', 'late');
    await waitFor(async () => (await state('local', 'a/late.bufr'))?.state === 'processed', {
      timeoutMs: 15_000,
      what: 'a/late.bufr processed',
    });
    expect(
      readRecords(e.recordLog)
        .map((r) => r.path)
        .sort(),
    ).toEqual(['a/0.bufr', 'a/1.bufr', 'a/2.bufr', 'a/3.bufr', 'a/late.bufr', 'spin.bufr']);

    const metrics = parsePrometheusText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
    const restarts = (p: string) =>
      metrics.samples
        .filter((s) => s.name === 'poller_plugin_worker_restarts_total' && s.labels['plugin'] === p)
        .reduce((n, s) => n + s.value, 0);
    expect(restarts('spins')).toBe(1);
    expect(restarts('allocates')).toBe(1);
    expect(restarts('exits')).toBe(1);
    expect(metrics.samples.some((s) => s.name === 'poller_plugin_wait_seconds_count' && s.value > 0)).toBe(true);
    expect(metrics.types.get('poller_plugin_runs_in_flight')).toBe('gauge');

    d.child.kill('SIGTERM');
    expect(await d.exited).toEqual({ code: 0, signal: null });
  });
});

describe('out of memory in run-once', () => {
  it('the file is quarantined, the others processed, and run-once exits 1 on its own', async () => {
    env = await startEngineEnv({
      plugins: (_dir, recordLog) => [
        { use: plugin('allocates.mjs'), match: '**/oom.bufr', memoryLimit: '64MiB' },
        { use: plugin('record.mjs'), match: '**/ok.bufr', options: { log: recordLog } },
      ],
    });
    await env.put('oom.bufr', 'x');
    await env.put('ok.bufr', 'ok');
    const r = await env.cli(['run-once', '--json']);
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(1);
    const ledger = env.ledger();
    expect((await ledger.history('radar', 'oom.bufr'))[0]).toMatchObject({
      state: 'quarantined',
      errorCode: 'POLLER_PLUGIN_OUT_OF_MEMORY',
    });
    expect((await ledger.history('radar', 'ok.bufr'))[0]?.state).toBe('processed');
    const again = await env.cli(['run-once', '--json']);
    expect(again.code, again.stderr).toBe(0);
  });
});

describe('isolate: none, a plugin that kills the poller on every run', () => {
  it('counts each killed run as an attempt; after maxAttempts restarts the file is quarantined and run-once exits normally', async () => {
    env = await startEngineEnv({
      plugins: (_dir, recordLog) => [
        { use: plugin('kills-process.mjs'), match: '**/poison.bufr', isolate: 'none', maxAttempts: 2 },
        { use: plugin('record.mjs'), match: '**/ok.bufr', options: { log: recordLog }, isolate: 'none' },
      ],
    });
    await env.put('poison.bufr', 'x');
    await env.put('ok.bufr', 'ok');
    for (let i = 0; i < 2; i++) {
      const killed = await env.cli(['run-once', '--json']);
      expect(killed.signal, killed.stderr).toBe('SIGKILL');
    }
    const third = await env.cli(['run-once', '--json']);
    expect(third.signal, third.stderr).toBeNull();
    expect(third.code).toBe(1);
    const ledger = env.ledger();
    const [poison] = await ledger.history('radar', 'poison.bufr');
    expect(poison).toMatchObject({ state: 'quarantined', errorCode: 'POLLER_PLUGIN_CRASHED' });
    const [run] = (await ledger.pluginRuns([poison!.id])).get(poison!.id) ?? [];
    expect(run).toMatchObject({ plugin: 'kills-process', state: 'quarantined', attempts: 2 });
    expect((await ledger.history('radar', 'ok.bufr'))[0]?.state).toBe('processed');
    const fourth = await env.cli(['run-once', '--json']);
    expect(fourth.code, fourth.stderr).toBe(0);
  });
});
