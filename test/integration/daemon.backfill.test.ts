/**
 * Backfills next to the daemon: `run-once --since/--until` lists only the dated directories of
 * its window, and can run while the daemon polls the same ledger (each file fetched once).
 * A SIGTERM while plugins run lets them finish within the grace period.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';
import { countBy, readRecords } from '../helpers/records.js';
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

const t = (iso: string) => Date.parse(iso);

describe('backfill', () => {
  it('run-once --since/--until lists only the dated directories of the window; a missing day is no error', async () => {
    env = await startEngineEnv({ source: { include: ['{YYYY}/{MM}/{DD}/*.bufr'] } });
    const e = env;
    await e.put('2026/10/31/a.bufr', 'a', t('2026-10-31T06:00Z'));
    await e.put('2026/11/01/b.bufr', 'b', t('2026-11-01T06:00Z'));
    // 2026/11/02 does not exist on the server.
    // In the window by its mtime, but in a directory outside it: never listed, so never taken.
    await e.put('2026/10/30/late-copy.bufr', 'x', t('2026-10-31T07:00Z'));
    await e.put('2026/11/03/after.bufr', 'y', t('2026-11-03T06:00Z'));

    const r = await e.cli(['run-once', '--json', '--since', '2026-10-31T00:00Z', '--until', '2026-11-03T00:00Z']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { sources: Array<{ listed: number; fetched: number; error?: unknown }> };
    expect(summary.sources[0]).toMatchObject({ listed: 2, fetched: 2 });
    expect(summary.sources[0]?.error).toBeUndefined();
    expect(
      readRecords(e.recordLog)
        .map((x) => x.path)
        .sort(),
    ).toEqual(['2026/10/31/a.bufr', '2026/11/01/b.bufr']);
  });

  it('run-once alongside the daemon on one ledger: every file fetched and processed once', async () => {
    env = await startEngineEnv({ source: { every: '100ms', concurrency: 2 } });
    const e = env;
    const names = Array.from({ length: 30 }, (_, i) => `d/${String(i).padStart(2, '0')}.bufr`);
    for (const [i, n] of names.entries()) await e.put(n, Buffer.alloc(20_000 + i, i));
    daemon = await startDaemon(e);
    const backfill = await e.cli(['run-once', '--json']);
    expect(backfill.code, backfill.stderr).toBe(0);
    await waitFor(() => readRecords(e.recordLog).length >= names.length, { timeoutMs: 8_000, what: 'all processed' });
    const served = countBy(e.ftp.retrieved(), (p) => path.relative(e.ftp.root, p));
    expect([...served.values()].every((n) => n === 1)).toBe(true);
    expect(served.size).toBe(names.length);
    const processedBy = countBy(readRecords(e.recordLog), (x) => x.path);
    expect([...processedBy.values()].every((n) => n === 1)).toBe(true);
  });

  it('SIGTERM while a plugin runs: it finishes within the grace period and the file is processed', async () => {
    env = await startEngineEnv({
      source: { every: '200ms' },
      plugins: (_dir, log) => [{ use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log, delayMs: 800 } }],
    });
    const e = env;
    await e.put('slow.bufr', 'volume');
    daemon = await startDaemon(e, ['--grace', '5s']);
    await waitFor(async () => (await e.ledger().files({ limit: 10 }))[0]?.state === 'processing', {
      timeoutMs: 8_000,
      what: 'plugin running',
    });
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(daemon.lines().some((l) => l.event === 'daemon.grace_expired')).toBe(false);
    expect((await e.ledger().files({ limit: 10 }))[0]?.state).toBe('processed');
    expect(readRecords(e.recordLog).map((x) => x.path)).toEqual(['slow.bufr']);
  });
});
