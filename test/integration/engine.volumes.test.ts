/**
 * Radar volumes under the engine, against a real FTP server (ftp-srv): members of several volumes
 * arrive interleaved and out of order over several cycles; each volume plugin runs once per
 * volume version with every member; a volume missing a moment runs once after the quiet time,
 * marked partial; a late member reopens it only when configured to; a failing or hanging volume
 * plugin is isolated like a file plugin.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { editConfig, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';
import { findSamples, parsePrometheusText } from '../helpers/prometheus-text.js';
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

const T1 = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));
const T2 = new Date(Date.UTC(2026, 10, 23, 12, 5, 0));

const volumeLog = (dir: string) => path.join(dir, 'volumes.jsonl');
const readVolumes = (e: EngineEnv) => readRecords(volumeLog(e.dir)) as unknown as VolumeRecorded[];

async function putMember(e: EngineEnv, radar: string, t: Date, moment: string, seed = 0): Promise<string> {
  const { name, key } = memberName(radar, t, moment);
  await e.put(`in/${name}`, memberBytes(radar, t, moment, seed));
  return key;
}

describe('radar volumes', () => {
  it('interleaved members over several cycles: each volume runs once, with all its members', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock() },
      plugins: (dir, log) => [
        { use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log } },
        volumeRecorder(volumeLog(dir)),
      ],
    });
    const e = env;
    // Cycle 1: one member each of three volumes, newest volume first.
    const a = await putMember(e, 'RMA1', T2, 'VRAD');
    const b = await putMember(e, 'RMA1', T1, 'KDP');
    const c = await putMember(e, 'RMA2', T1, 'DBZH');
    let s = await e.cycle();
    expect(s.volumes).toMatchObject({ members: 3, complete: 0, processed: 0 });
    expect(s.volumes?.collecting.map((v) => v.key).sort()).toEqual([a, b, c].sort());
    expect(readVolumes(e)).toEqual([]);

    // Cycle 2: b completes, a and c gain one member each.
    await putMember(e, 'RMA1', T1, 'DBZH');
    await putMember(e, 'RMA2', T1, 'VRAD');
    await putMember(e, 'RMA1', T1, 'VRAD');
    await putMember(e, 'RMA1', T2, 'KDP');
    s = await e.cycle();
    expect(s.volumes).toMatchObject({ members: 4, complete: 1, processed: 1 });
    expect(readVolumes(e).map((r) => r.key)).toEqual([b]);

    // Cycle 3: the last members of a and c.
    await putMember(e, 'RMA2', T1, 'KDP');
    await putMember(e, 'RMA1', T2, 'DBZH');
    s = await e.cycle();
    expect(s.volumes).toMatchObject({ members: 2, complete: 2, processed: 2, collecting: [] });

    // A cycle with nothing new runs nothing.
    s = await e.cycle();
    expect(s.volumes).toMatchObject({ members: 0, processed: 0 });

    const runs = readVolumes(e);
    expect(countBy(runs, (r) => r.key)).toEqual(
      new Map([
        [a, 1],
        [b, 1],
        [c, 1],
      ]),
    );
    for (const r of runs) {
      expect(r).toMatchObject({ members: [...MOMENTS], complete: true, partial: false, missing: [], version: 1 });
      expect(r.fields).toMatchObject({ strategy: '0315', scan: '01' });
    }
    // File plugins ran as usual: once per file.
    expect(readRecords(e.recordLog)).toHaveLength(9);
    const ledger = e.ledger();
    const volumes = await ledger.volumes?.volumes({ source: 'radar' });
    expect(volumes?.map((v) => v.state)).toEqual(['processed', 'processed', 'processed']);
    const [first] = volumes ?? [];
    expect((await ledger.volumes?.volumeRuns([first!.id]))?.get(first!.id)).toMatchObject([
      { plugin: 'volume-record', state: 'succeeded', attempts: 1 },
    ]);
  });

  it('a volume missing a moment runs once after the quiet time, marked partial; a late member reopens it only when configured', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock({ completeAfter: '300ms', reopenLate: false }) },
      plugins: (dir) => [volumeRecorder(volumeLog(dir))],
    });
    const e = env;
    const key = await putMember(e, 'RMA3', T1, 'DBZH');
    await putMember(e, 'RMA3', T1, 'VRAD');
    const lone = await putMember(e, 'RMA4', T1, 'DBZH');
    const s = await e.cycle();
    const waiting = s.volumes?.collecting.find((v) => v.key === key);
    expect(waiting).toMatchObject({ present: ['DBZH', 'VRAD'], missing: ['KDP'], stale: false });
    expect(waiting?.partialAtMs).toBeGreaterThan(0);
    // Cycles until the quiet time has passed (bounded by waitFor).
    await waitFor(async () => (await e.cycle()).volumes?.partial === 1, { timeoutMs: 20_000, what: 'partial volume' });
    expect(readVolumes(e)).toMatchObject([
      { key, members: ['DBZH', 'VRAD'], partial: true, complete: false, missing: ['KDP'], attempt: 1 },
    ]);
    // One member is below the minimum of 2: it stays collecting, reported stale.
    const after = await e.cycle();
    expect(after.volumes?.collecting).toMatchObject([{ key: lone, present: ['DBZH'], stale: true }]);

    // The missing moment arrives late: recorded, the partial run stands.
    await putMember(e, 'RMA3', T1, 'KDP');
    await e.cycle();
    expect(readVolumes(e)).toHaveLength(1);
    const [v] = (await e.ledger().volumes?.volumesOfPath('radar', `in/${memberName('RMA3', T1, 'KDP').name}`)) ?? [];
    expect(v).toMatchObject({ key, version: 1, state: 'processed', partial: true });

    // A changed member always reopens: a new version runs with the new file, and with the late one.
    await putMember(e, 'RMA3', T1, 'VRAD', 7);
    expect((await e.cycle()).volumes).toMatchObject({ complete: 1, processed: 1 });
    expect(readVolumes(e)[1]).toMatchObject({ key, version: 2, members: [...MOMENTS], complete: true });
  });

  it('with reopenLate a late member makes a new version that runs complete', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock({ completeAfter: '300ms', reopenLate: true }) },
      plugins: (dir) => [volumeRecorder(volumeLog(dir))],
    });
    const e = env;
    const key = await putMember(e, 'RMA5', T1, 'DBZH');
    await putMember(e, 'RMA5', T1, 'KDP');
    await waitFor(async () => (await e.cycle()).volumes?.partial === 1, { timeoutMs: 20_000 });
    await putMember(e, 'RMA5', T1, 'VRAD');
    const s = await e.cycle();
    expect(s.volumes).toMatchObject({ complete: 1, processed: 1 });
    expect(readVolumes(e)).toMatchObject([
      { key, version: 1, partial: true, members: ['DBZH', 'KDP'] },
      { key, version: 2, partial: false, complete: true, members: [...MOMENTS] },
    ]);
  });

  it('poller forget drops the volume membership: the same file coming back reruns its volume once', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock() },
      plugins: (dir) => [volumeRecorder(volumeLog(dir))],
    });
    const e = env;
    let key = '';
    for (const m of MOMENTS) key = await putMember(e, 'RMA5', T1, m);
    expect((await e.cycle()).volumes).toMatchObject({ complete: 1, processed: 1 });
    // Nothing changed on the server: listing again runs nothing.
    expect((await e.cycle()).volumes).toMatchObject({ members: 0, processed: 0 });

    const forgotten = `in/${memberName('RMA5', T1, 'KDP').name}`;
    const out = await e.cli(['forget', '--source', 'radar', '--path', forgotten, '--json']);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ forgotten: 1 });
    // The same file, same version, lands again and reopens the volume: a new version runs once.
    expect((await e.cycle()).volumes).toMatchObject({ members: 1, complete: 1, processed: 1 });
    expect((await e.cycle()).volumes).toMatchObject({ members: 0, processed: 0 });
    expect(readVolumes(e).map((r) => [r.key, r.version, r.members])).toEqual([
      [key, 1, [...MOMENTS]],
      [key, 2, [...MOMENTS]],
    ]);
    const versions = (await e.ledger().volumes?.volumes({ key })) ?? [];
    expect(versions.map((v) => [v.version, v.state])).toEqual([
      [2, 'processed'],
      [1, 'processed'],
    ]);
  });

  it('a volume failed only by a plugin removed from the config is processed at its next run', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock() },
      plugins: (dir) => [
        volumeRecorder(volumeLog(dir)),
        volumeRecorder(path.join(dir, 'never.jsonl'), { mode: 'throw' }, { name: 'thrower', maxAttempts: 5 }),
      ],
    });
    const e = env;
    let key = '';
    for (const m of MOMENTS) key = await putMember(e, 'RMA9', T1, m);
    expect((await e.cycle()).volumes).toMatchObject({ complete: 1, processed: 0, failed: 1 });
    await editConfig(e, (c) => ({
      ...c,
      plugins: (c['plugins'] as Array<Record<string, unknown>>).filter((p) => p['name'] !== 'thrower'),
    }));
    // Its retry comes after the backoff (50 ms base): cycles until it is taken (bounded).
    await waitFor(async () => ((await e.cycle()).volumes?.processed ?? 0) === 1, {
      timeoutMs: 20_000,
      what: 'the volume processed',
    });
    const [v] = (await e.ledger().volumes?.volumes({ key })) ?? [];
    expect(v).toMatchObject({ version: 1, state: 'processed' });
    // The recorder ran once (its success stood), the removed plugin is never run again.
    expect(readVolumes(e).map((r) => r.key)).toEqual([key]);
    expect((await e.cycle()).volumes).toMatchObject({ processed: 0, failed: 0 });
  });

  it('a throwing or hanging volume plugin is isolated: recorded, retried, quarantined; the others run', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock() },
      config: { retryBase: '1ms', retryMax: '1ms' },
      plugins: (dir, log) => [
        { use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log } },
        volumeRecorder(volumeLog(dir)),
        volumeRecorder(path.join(dir, 'never.jsonl'), { mode: 'throw' }, { name: 'thrower', maxAttempts: 2 }),
        volumeRecorder(
          path.join(dir, 'never.jsonl'),
          { mode: 'hang' },
          { name: 'hanger', timeout: '300ms', maxAttempts: 1 },
        ),
      ],
    });
    const e = env;
    for (const m of MOMENTS) await putMember(e, 'RMA6', T1, m);
    const s = await e.cycle();
    expect(s.volumes).toMatchObject({ complete: 1, processed: 0, failed: 1 });
    expect(s.failed).toBe(0); // the file plugins are not touched
    expect(readVolumes(e)).toHaveLength(1);
    const l = e.ledger();
    const [v] = (await l.volumes?.volumes({})) ?? [];
    expect(v).toMatchObject({ state: 'failed' });
    const runs = (await l.volumes?.volumeRuns([v!.id]))?.get(v!.id) ?? [];
    expect(runs.map((r) => [r.plugin, r.state, r.errorCode])).toEqual([
      ['hanger', 'quarantined', 'POLLER_PLUGIN_TIMEOUT'],
      ['thrower', 'failed', 'POLLER_PLUGIN_FAILED'],
      ['volume-record', 'succeeded', null],
    ]);
    // The retry runs only the plugin that failed, then gives up on it.
    await waitFor(
      async () => {
        await e.cycle();
        return (await l.volumes?.volumes({}))?.[0]?.state === 'quarantined';
      },
      { timeoutMs: 20_000 },
    );
    expect(readVolumes(e)).toHaveLength(1);
    const final = (await l.volumes?.volumeRuns([v!.id]))?.get(v!.id) ?? [];
    expect(final.find((r) => r.plugin === 'thrower')).toMatchObject({ state: 'quarantined', attempts: 2 });
    // `poller retry --quarantined --volume` runs the given-up plugins again, attempts from 1.
    const retried = await e.cli(['retry', '--quarantined', '--volume', v!.key, '--json']);
    expect(retried.code).toBe(1);
    expect(JSON.parse(retried.stdout).volumes).toEqual({ scheduled: 1, processed: 0, failed: 1 });
    const again = (await l.volumes?.volumeRuns([v!.id]))?.get(v!.id) ?? [];
    expect(again.map((r) => [r.plugin, r.state, r.attempts])).toEqual([
      ['hanger', 'quarantined', 1],
      ['thrower', 'failed', 1],
      ['volume-record', 'succeeded', 1],
    ]);
    expect(readVolumes(e)).toHaveLength(1);
  });

  it('run-once says what is still collecting, and with --volumes-wait runs the partial volume before exit', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock({ completeAfter: '1s' }) },
      plugins: (dir) => [volumeRecorder(volumeLog(dir))],
    });
    const e = env;
    const key = await putMember(e, 'RMA7', T1, 'DBZH');
    await putMember(e, 'RMA7', T1, 'VRAD');
    const first = await e.cli(['run-once']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(
      /volumes: 1 volume\(s\) of radar still collecting; a run after \S+Z declares the first partial/,
    );
    expect(first.stdout).toMatch(/volumes: 0 run, 0 failed, 1 collecting/);
    const waited = await e.cli(['run-once', '--json', '--volumes-wait', '30s']);
    expect(waited.code, waited.stderr).toBe(0);
    expect(JSON.parse(waited.stdout).sources[0].volumes).toMatchObject({ partial: 1, processed: 1, collecting: [] });
    expect(readVolumes(e)).toMatchObject([{ key, partial: true, missing: ['KDP'] }]);
  });

  it('the daemon declares a quiet volume partial on its timer, between cycles of a slow schedule', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock({ completeAfter: '1s', minimum: 2 }), every: '1h' },
      plugins: (dir) => [volumeRecorder(volumeLog(dir))],
      config: { http: { host: '127.0.0.1', port: 0 } },
    });
    const e = env;
    const key = await putMember(e, 'RMA8', T1, 'DBZH');
    await putMember(e, 'RMA8', T1, 'KDP');
    await putMember(e, 'RMA9', T1, 'DBZH'); // below the minimum: stays collecting, stale
    const daemon = await startDaemon(e);
    const line = await daemon.waitForEvent('volume.partial', (l) => l['volume'] === key, 20_000);
    expect(line).toMatchObject({ source: 'radar', members: 2 });
    await waitFor(() => readVolumes(e).length === 1, { timeoutMs: 20_000, what: 'the partial volume run' });
    const httpPort = Number(daemon.lines().find((l) => l.event === 'daemon.started')?.['httpPort']);
    const metrics = parsePrometheusText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
    expect(findSamples(metrics, 'poller_volumes', { source: 'radar', state: 'processed' })[0]?.value).toBe(1);
    expect(findSamples(metrics, 'poller_volumes', { source: 'radar', state: 'collecting' })[0]?.value).toBe(1);
    expect(findSamples(metrics, 'poller_volumes_stale', { source: 'radar' })[0]?.value).toBe(1);
    expect(findSamples(metrics, 'poller_volumes_closed_total', { source: 'radar', state: 'partial' })[0]?.value).toBe(
      1,
    );
    expect(
      findSamples(metrics, 'poller_volume_complete_seconds_count', { source: 'radar', state: 'partial' })[0]?.value,
    ).toBe(1);
    daemon.child.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
    // One cycle only (the schedule is hourly): the timer did it.
    expect(daemon.lines().filter((l) => l.event === 'cycle.finished')).toHaveLength(1);
    expect(readVolumes(e)).toMatchObject([{ key, partial: true, members: ['DBZH', 'KDP'] }]);
  });

  it('the shipped radar-volume plugin writes a manifest and a quicklook per volume, in a worker', async () => {
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock() },
      plugins: (dir) => [{ use: 'radar-volume', options: { out: path.join(dir, 'volumes') } }],
    });
    const e = env;
    let key = '';
    for (const m of MOMENTS) key = await putMember(e, 'RMA9', T1, m);
    const s = await e.cycle();
    expect(s.volumes).toMatchObject({ complete: 1, processed: 1 });
    const dir = path.join(e.dir, 'volumes', 'radar', key);
    const manifest = JSON.parse(readFileSync(path.join(dir, `${key}.volume.json`), 'utf8'));
    expect(manifest).toMatchObject({ key, sweeps: 6, completeness: { complete: true, present: [...MOMENTS] } });
    expect(existsSync(path.join(dir, `${key}.DBZH.png`))).toBe(true);
    const l = e.ledger();
    const [v] = (await l.volumes?.volumes({})) ?? [];
    expect((await l.volumes?.volumeRuns([v!.id]))?.get(v!.id)?.[0]?.outputs.map((o) => o.kind)).toEqual([
      'radar-volume.quicklook',
      'radar-volume.manifest',
    ]);
  });
});
