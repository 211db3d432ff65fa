/**
 * Volume plugins run exactly once per volume version to success, across a kill -9 between a
 * volume's completion and its plugin's outcome, and with two pollers (a daemon and a run-once,
 * or two run-once) on one ledger.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import {
  MOMENTS,
  memberBytes,
  memberName,
  type VolumeRecorded,
  volumeRecorder,
  volumesBlock,
} from '../helpers/radar-volumes.js';
import { countBy, readRecords } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

const T = (m: number) => new Date(Date.UTC(2026, 10, 23, 12, m * 5, 0));
const readVolumes = (file: string) => readRecords(file) as unknown as VolumeRecorded[];

/** `radars` x `times` complete volumes on the server; returns their keys. */
async function putVolumes(e: EngineEnv, radars: string[], times: number): Promise<string[]> {
  const keys: string[] = [];
  for (const radar of radars)
    for (let i = 0; i < times; i++) {
      for (const m of MOMENTS) {
        const { name, key } = memberName(radar, T(i), m);
        await e.put(`in/${name}`, memberBytes(radar, T(i), m));
        if (m === MOMENTS[0]) keys.push(key);
      }
    }
  return keys.sort();
}

describe('volume plugins exactly once', () => {
  it('kill -9 while a volume plugin runs: it runs again after restart, once to success', async () => {
    const log = { file: '' };
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock() },
      plugins: (dir) => {
        log.file = path.join(dir, 'volumes.jsonl');
        return [volumeRecorder(log.file, { hangFirst: path.join(dir, 'hanging') }, { concurrency: 1 })];
      },
    });
    const e = env;
    const keys = await putVolumes(e, ['RMA1'], 1);
    const marker = path.join(e.dir, 'hanging');
    const child = e.spawnCli(['run-once']);
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    // The volume is complete and claimed, its plugin is running: kill the poller there.
    await waitFor(() => existsSync(marker), { timeoutMs: 30_000, what: 'the volume plugin to start' });
    expect(readFileSync(marker, 'utf8')).toBe(keys[0]);
    child.kill('SIGKILL');
    await exited;
    const [claimed] = (await e.ledger().volumes?.volumes({})) ?? [];
    expect(claimed).toMatchObject({ state: 'complete' });
    expect(claimed?.claimedBy).not.toBeNull();
    expect(readVolumes(log.file)).toEqual([]);

    const again = await e.cli(['run-once', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(readVolumes(log.file)).toMatchObject([{ key: keys[0], attempt: 2, members: [...MOMENTS] }]);
    const l = e.ledger();
    const [v] = (await l.volumes?.volumes({})) ?? [];
    expect(v).toMatchObject({ state: 'processed', claimedBy: null });
    expect((await l.volumes?.volumeRuns([v!.id]))?.get(v!.id)).toMatchObject([
      { plugin: 'volume-record', state: 'succeeded', attempts: 2 },
    ]);
    // Done is done: another run runs nothing.
    const third = await e.cli(['run-once', '--json']);
    expect(third.code, third.stderr).toBe(0);
    expect(readVolumes(log.file)).toHaveLength(1);
  });

  it('two run-once processes on one ledger: each volume runs once', async () => {
    const log = { file: '' };
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock(), concurrency: 2 },
      plugins: (dir) => {
        log.file = path.join(dir, 'volumes.jsonl');
        return [volumeRecorder(log.file, { delayMs: 50 })];
      },
    });
    const e = env;
    const keys = await putVolumes(e, ['RMA1', 'RMA2'], 4);
    const results = await Promise.all([e.cli(['run-once', '--json']), e.cli(['run-once', '--json'])]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const runs = countBy(readVolumes(log.file), (r) => r.key);
    expect([...runs.keys()].sort()).toEqual(keys);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    const processed = results.map((r) => JSON.parse(r.stdout).sources[0].volumes.processed as number);
    expect(processed.reduce((a, b) => a + b, 0)).toBe(keys.length);
  });

  it('a daemon and a run-once on one ledger: each volume runs once', async () => {
    const log = { file: '' };
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock(), every: '1s' },
      plugins: (dir) => {
        log.file = path.join(dir, 'volumes.jsonl');
        return [volumeRecorder(log.file, { delayMs: 50 })];
      },
    });
    const e = env;
    const keys = await putVolumes(e, ['RMA1', 'RMA2'], 3);
    const daemon = await startDaemon(e);
    const once = await e.cli(['run-once', '--json']);
    expect(once.code, once.stderr).toBe(0);
    await waitFor(async () => (await e.ledger().volumes?.volumes({ state: 'processed' }))?.length === keys.length, {
      timeoutMs: 30_000,
      what: 'every volume processed',
    });
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    const runs = countBy(readVolumes(log.file), (r) => r.key);
    expect([...runs.keys()].sort()).toEqual(keys);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  });
});
