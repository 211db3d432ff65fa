/**
 * A backfill drains: `maxFilesPerPoll` bounds one batch, not the command. run-once takes batch
 * after batch until nothing ready is left; the daemon starts the next batch at once instead of
 * waiting for its schedule. A file no plugin matches is processed with its fetch commit.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
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

const FILES = 11;
const CAP = 4;
const names = Array.from({ length: FILES }, (_, i) => `d${i % 3}/${String(i).padStart(2, '0')}.bufr`);

interface Summary {
  batches: number;
  sources: Array<{ fetched: number; processed: number; failed: number; batches: number; readyLeft: number }>;
}

describe('drain', () => {
  it('run-once with more files than the cap lands and processes all of them, in batches', async () => {
    env = await startEngineEnv({ source: { maxFilesPerPoll: CAP, concurrency: 3 } });
    const e = env;
    for (const [i, n] of names.entries()) await e.put(n, Buffer.alloc(1000 + i, i));
    const r = await e.cli(['run-once', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as Summary;
    expect(s.sources[0]).toMatchObject({ fetched: FILES, processed: FILES, failed: 0, batches: 3, readyLeft: 0 });
    expect(s.batches).toBe(3);
    expect(
      readRecords(e.recordLog)
        .map((x) => x.path)
        .sort(),
    ).toEqual([...names].sort());
    const rows = await e.ledger().files({ limit: 100 });
    expect(rows.filter((x) => x.state === 'processed')).toHaveLength(FILES);
    // The table says it too.
    await e.put('late.bufr', 'late');
    const table = await e.cli(['run-once']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/batches/);
  });

  it('with no plugin, every file is processed at its fetch commit, with no plugin runs', async () => {
    env = await startEngineEnv({ source: { maxFilesPerPoll: CAP }, plugins: [] });
    const e = env;
    for (const [i, n] of names.entries()) await e.put(n, Buffer.alloc(500 + i, i));
    const r = await e.cli(['run-once', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as Summary).sources[0]).toMatchObject({ fetched: FILES, processed: FILES });
    const ledger = e.ledger();
    const rows = await ledger.files({ limit: 100 });
    expect(rows.map((x) => x.state)).toEqual(Array(FILES).fill('processed'));
    expect(rows.every((x) => x.localPath !== null && x.fetchedMs !== null && x.doneMs !== null)).toBe(true);
    const runs = await ledger.pluginRuns(rows.map((x) => x.id));
    expect([...runs.values()].flat()).toEqual([]);
  });

  it('the daemon takes the next batch at once while ready files remain, not at its next tick', async () => {
    env = await startEngineEnv({ source: { maxFilesPerPoll: CAP, every: '1h' } });
    const e = env;
    for (const [i, n] of names.entries()) await e.put(n, Buffer.alloc(800 + i, i));
    daemon = await startDaemon(e);
    const d = daemon;
    const cyclesDone = () => d.lines().filter((l) => l.event === 'cycle.finished');
    // The last batch's plugin records come just before its cycle.finished line.
    await waitFor(() => readRecords(e.recordLog).length >= FILES && cyclesDone().length >= 3, {
      timeoutMs: 15_000,
      what: 'every file processed in at least three batches',
    });
    const finished = cyclesDone();
    expect(finished.length).toBeGreaterThanOrEqual(3);
    expect(new Set(readRecords(e.recordLog).map((x) => x.path)).size).toBe(FILES);
  });
});
