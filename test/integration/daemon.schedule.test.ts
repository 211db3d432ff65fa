/**
 * The daemon against ftp-srv with a short `every:`: files that appear on the server are picked
 * up by a later cycle, and a SIGHUP with a broken config keeps the running one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, editConfig, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';
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

/** A plugin that notes its setup and teardown calls, one line each. */
const LIFECYCLE_PLUGIN = `import { appendFileSync } from 'node:fs';
export default {
  apiVersion: 1,
  name: 'lifecycle',
  setup(ctx) { appendFileSync(ctx.options.log, 'setup\\n'); },
  process() {},
  teardown(ctx) { appendFileSync(ctx.options.log, 'teardown\\n'); },
};
`;

const recorded = (e: EngineEnv) => new Set(readRecords(e.recordLog).map((r) => r.path));

describe('poller run', () => {
  it('picks up files that appear on the server in later cycles, and stops with exit 0 on SIGTERM', async () => {
    env = await startEngineEnv({ source: { every: '200ms' } });
    const e = env;
    await e.put('a/one.bufr', 'first');
    daemon = await startDaemon(e);
    await waitFor(() => recorded(e).has('a/one.bufr'), { timeoutMs: 8_000, what: 'first file processed' });

    await e.put('a/two.bufr', 'second');
    // Written just now: taken once two listings of later cycles saw it unchanged (the settle rule).
    await e.put('b/three.bufr', 'third', Date.now());
    await waitFor(() => recorded(e).has('a/two.bufr') && recorded(e).has('b/three.bufr'), {
      timeoutMs: 8_000,
      what: 'new files processed',
    });
    // Several cycles ran, and each file went to the plugin once.
    expect(daemon.lines().filter((l) => l.event === 'cycle.finished').length).toBeGreaterThan(1);
    expect(
      readRecords(e.recordLog)
        .map((r) => r.path)
        .sort(),
    ).toEqual(['a/one.bufr', 'a/two.bufr', 'b/three.bufr']);

    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(daemon.lines().some((l) => l.event === 'daemon.stopped')).toBe(true);
    const files = await e.ledger().files({ limit: 100 });
    expect(files.map((f) => f.state)).toEqual(['processed', 'processed', 'processed']);
  });

  it('SIGHUP with a broken config logs every problem and keeps polling with the old one; a good one is applied', async () => {
    env = await startEngineEnv({
      source: { every: '200ms' },
      plugins: (dir, log) => [
        { use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log } },
        { use: './lifecycle.mjs', options: { log: path.join(dir, 'lifecycle.log') } },
      ],
    });
    const e = env;
    const lifecycleLog = path.join(e.dir, 'lifecycle.log');
    const lifecycle = () =>
      existsSync(lifecycleLog) ? readFileSync(lifecycleLog, 'utf8').split('\n').filter(Boolean) : [];
    await writeFile(path.join(e.dir, 'lifecycle.mjs'), LIFECYCLE_PLUGIN);
    daemon = await startDaemon(e);
    await daemon.waitForEvent('cycle.finished');

    let original: Record<string, unknown> = {};
    await editConfig(e, (c) => {
      original = c;
      const [src] = c['sources'] as Array<Record<string, unknown>>;
      return { ...c, maxTransfers: 0, sources: [{ ...src, every: 'soon', concurrency: 1000 }] };
    });
    daemon.child.kill('SIGHUP');
    await waitFor(() => daemon?.lines().filter((l) => l.event === 'config.reload_failed').length === 3, {
      what: 'three reload problems',
    });
    const issues = daemon
      .lines()
      .filter((l) => l.event === 'config.reload_failed')
      .map((l) => String(l['issue']))
      .sort();
    expect(issues[0]).toMatch(/^maxTransfers: /);
    expect(issues[1]).toMatch(/^sources\[0\]\.concurrency: /);
    expect(issues[2]).toMatch(/^sources\[0\]\.every: "soon" is not a duration/);

    // The old config still runs: a new file is fetched and processed.
    await e.put('after-hup.bufr', 'x');
    await waitFor(() => recorded(e).has('after-hup.bufr'), { timeoutMs: 8_000, what: 'file after a failed reload' });

    // A valid config that takes other files is applied between cycles.
    await editConfig(e, () => {
      const [src] = original['sources'] as Array<Record<string, unknown>>;
      return { ...original, landing: './elsewhere', sources: [{ ...src, include: ['**/*.h5'] }] };
    });
    daemon.child.kill('SIGHUP');
    await daemon.waitForEvent('config.reloaded');
    expect(daemon.lines().find((l) => l.event === 'config.restart_needed')?.['setting']).toBe('landing');
    await e.put('volume.h5', 'h5');
    await e.put('ignored.bufr', 'not any more');
    await waitFor(() => recorded(e).has('volume.h5'), { timeoutMs: 8_000, what: 'file of the new include glob' });
    expect(recorded(e).has('ignored.bufr')).toBe(false);
    // The landing directory is read at start only: files keep landing where partials are resumed.
    expect(existsSync(path.join(e.landing, 'radar', 'volume.h5'))).toBe(true);

    // Plugins of the new config were set up before the old ones were torn down; SIGTERM tears
    // down the running ones.
    await waitFor(() => lifecycle().length === 3, { what: 'old plugins torn down' });
    expect(lifecycle()).toEqual(['setup', 'setup', 'teardown']);
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(lifecycle()).toEqual(['setup', 'setup', 'teardown', 'teardown']);
  });
});
