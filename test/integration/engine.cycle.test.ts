import { existsSync, readFileSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ISOLATION_MODES } from '../../src/plugins/isolation/pool.js';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';

interface Recorded {
  path: string;
  size: number;
  sha256: string;
  attempt: number;
}

function recorded(env: EngineEnv): Recorded[] {
  if (!existsSync(env.recordLog)) return [];
  return readFileSync(env.recordLog, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Recorded);
}

async function walkFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.relative(dir, path.join(e.parentPath, e.name)));
  }
  return out.sort();
}

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

describe('poll cycle end to end (ftp-srv, SQLite, real files)', () => {
  it('fetches every matching file once; a changed file again; excluded and non-matching never', async () => {
    env = await startEngineEnv({ source: { include: ['**/*.bufr'], exclude: ['**/skip/**', '**/*.tmp.bufr'] } });
    await env.put('2026/11/23/a.bufr', 'aaaa');
    await env.put('2026/11/23/b.bufr', 'bbbbbbbb');
    await env.put('2026/11/24/c.bufr', 'c');
    await env.put('2026/11/23/readme.txt', 'not wanted');
    await env.put('skip/d.bufr', 'excluded');
    await env.put('e.tmp.bufr', 'excluded');

    const first = await env.cycle();
    expect(first).toMatchObject({ listed: 3, new: 3, fetched: 3, processed: 3, failed: 0 });
    expect(await walkFiles(path.join(env.landing, 'radar'))).toEqual([
      '2026/11/23/a.bufr',
      '2026/11/23/b.bufr',
      '2026/11/24/c.bufr',
    ]);
    expect(readFileSync(path.join(env.landing, 'radar/2026/11/23/b.bufr'), 'utf8')).toBe('bbbbbbbb');

    const second = await env.cycle();
    expect(second).toMatchObject({ listed: 3, new: 0, fetched: 0, processed: 0 });

    await env.put('2026/11/23/a.bufr', 'a changed file', Date.now() - 1_800_000);
    const third = await env.cycle();
    expect(third).toMatchObject({ fetched: 1, processed: 1 });
    expect(readFileSync(path.join(env.landing, 'radar/2026/11/23/a.bufr'), 'utf8')).toBe('a changed file');
    const seen = recorded(env).map((r) => r.path);
    expect(seen.sort()).toEqual(['2026/11/23/a.bufr', '2026/11/23/a.bufr', '2026/11/23/b.bufr', '2026/11/24/c.bufr']);
    expect(
      env.ftp
        .retrieved()
        .map((p) => path.relative(env!.ftp.root, p))
        .sort(),
    ).toEqual(seen.sort());
    const history = await env.ledger().history('radar', '2026/11/23/a.bufr');
    expect(history.map((h) => [h.state, h.sizeBytes])).toEqual([
      ['processed', 14],
      ['processed', 4],
    ]);
    expect(await env.ledger().files({ path: 'readme' })).toHaveLength(0);
  });

  it('a file that grows between listings is taken only when stable; the plugin sees it whole', async () => {
    env = await startEngineEnv({ source: { stableListings: 2 } });
    const now = Date.now();
    await env.put('live.bufr', 'x'.repeat(1000), now);
    const c1 = await env.cycle({ settleWithinCycle: false });
    expect(c1).toMatchObject({ fetched: 0, settling: 1 });
    await env.put('live.bufr', 'x'.repeat(5000), now + 1000);
    const c2 = await env.cycle({ settleWithinCycle: false });
    expect(c2).toMatchObject({ fetched: 0, settling: 1 });
    const c3 = await env.cycle({ settleWithinCycle: false });
    expect(c3).toMatchObject({ fetched: 1, processed: 1 });
    const [r] = recorded(env);
    expect(r).toMatchObject({ path: 'live.bufr', size: 5000 });
    expect(existsSync(path.join(env.landing, '.partial'))).toBe(true);
    expect(await readdir(path.join(env.landing, '.partial'))).toEqual([]);
  });

  it('run-once takes its second listing after the settle delay instead of waiting for a next cycle', async () => {
    env = await startEngineEnv({ source: { stableListings: 2, settleDelay: '50ms' } });
    await env.put('young.bufr', 'y', Date.now());
    const c = await env.cycle({ settleWithinCycle: true });
    expect(c).toMatchObject({ fetched: 1, processed: 1 });
  });
});

// The same isolation, retry and quarantine rules whatever runs the plugin.
describe.each(ISOLATION_MODES)('plugin failures (isolate: %s)', (isolate) => {
  it('a throwing, a rejecting and a hanging plugin are recorded; the others and other files go on; retry re-runs only them', async () => {
    env = await startEngineEnv({
      plugins: (dir, recordLog) => [
        { use: path.join(FIXTURE_PLUGINS, 'throws.mjs'), options: { fixedFlag: path.join(dir, 'fixed') }, isolate },
        { use: path.join(FIXTURE_PLUGINS, 'rejects.mjs'), isolate },
        { use: path.join(FIXTURE_PLUGINS, 'hangs.mjs'), timeout: '300ms', isolate },
        { use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log: recordLog }, isolate },
      ],
    });
    await env.put('one.bufr', '1');
    await env.put('two.bufr', '22');

    const c = await env.cycle();
    expect(c).toMatchObject({ fetched: 2, processed: 0, failed: 2 });
    expect(
      recorded(env)
        .map((r) => r.path)
        .sort(),
    ).toEqual(['one.bufr', 'two.bufr']);
    const ledger = env.ledger();
    const [file] = await ledger.history('radar', 'one.bufr');
    expect(file?.state).toBe('failed');
    const runs = Object.fromEntries(
      ((await ledger.pluginRuns([file!.id])).get(file!.id) ?? []).map((r) => [r.plugin, r]),
    );
    expect(runs['throws']).toMatchObject({ state: 'failed', lastError: 'boom on one.bufr' });
    expect(runs['rejects']).toMatchObject({ state: 'failed', lastError: 'rejected with a string' });
    expect(runs['hangs']).toMatchObject({ state: 'failed', errorCode: 'POLLER_PLUGIN_TIMEOUT' });
    expect(runs['record']).toMatchObject({ state: 'succeeded' });

    const why = await env.cli(['why', 'one.bufr']);
    expect(why.stdout).toMatch(/failed in plugin .*throws \(failed after 1 attempt\(s\): boom on one.bufr\)/);

    // Fix the throwing plugin; retry only it: no download, the record plugin does not run again.
    await writeFile(path.join(env.dir, 'fixed'), '');
    const retrievedBefore = env.ftp.retrieved().length;
    const retry = await env.cli(['retry', '--plugin', 'throws', '--json']);
    // throws now succeeds; the files stay failed for rejects and hangs, so the command exits 1.
    expect(retry.stderr).not.toContain('boom');
    expect(JSON.parse(retry.stdout)).toEqual({ scheduled: 2, processed: 0, failed: 2 });
    expect(retry.code).toBe(1);
    expect(env.ftp.retrieved().length).toBe(retrievedBefore);
    expect(recorded(env)).toHaveLength(2);
    const after = Object.fromEntries(
      ((await ledger.pluginRuns([file!.id])).get(file!.id) ?? []).map((r) => [r.plugin, r]),
    );
    expect(after['throws']).toMatchObject({ state: 'succeeded', attempts: 2 });
    expect(after['rejects']?.attempts).toBe(1);
    expect(after['record']?.attempts).toBe(1);
  });

  it('a plugin that keeps failing is quarantined after maxAttempts', async () => {
    env = await startEngineEnv({
      plugins: [{ use: path.join(FIXTURE_PLUGINS, 'throws.mjs'), maxAttempts: 2, isolate }],
    });
    await env.put('q.bufr', 'q');
    await env.cycle();
    // retryBase is 50 ms in the test config: the second attempt is due almost at once.
    await new Promise((r) => setTimeout(r, 300));
    await env.cycle();
    const [f] = await env.ledger().history('radar', 'q.bufr');
    expect(f?.state).toBe('quarantined');
    const runOnce = await env.cli(['run-once', '--json']);
    expect(runOnce.code).toBe(0);
  });
});
