/**
 * Three pollers (the built CLI) on one PostgreSQL ledger, one FTP server and one landing root:
 * 60 radar volumes of 7 members arrive out of order, in waves. Each volume's plugin runs once to
 * success across the hosts, also when the instance whose plugin is running a volume is killed
 * with SIGKILL: the survivors' sweep gives its claim back after the lease and one of them runs it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { freshDatabase, pgAvailable } from '../helpers/postgres.js';
import {
  memberBytes,
  memberName,
  type VolumeRecorded,
  volumeRecorder,
  volumesBlock,
} from '../helpers/radar-volumes.js';
import { countBy, readRecords } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

const MOMENTS = ['DBZH', 'KDP', 'PHIDP', 'RHOHV', 'VRAD', 'WRAD', 'ZDR'];
const RADARS = ['RMA1', 'RMA2', 'RMA3', 'RMA4', 'RMA5', 'RMA6'];
const TIMES = 10;
const WAVES = 6;

let env: EngineEnv | undefined;
let ledger: PostgresLedger | undefined;
const daemons: Daemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0))
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  await ledger?.close();
  await env?.close();
  env = undefined;
});

/** A member's BUFR bytes (the encoder knows three quantities: the others are DBZH fields of their own seed). */
function bytesOf(m: { radar: string; t: Date; moment: string }): Uint8Array {
  return memberBytes(m.radar, m.t, 'DBZH', MOMENTS.indexOf(m.moment));
}

/** A deterministic shuffle (the same out-of-order arrival on every run). */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe.skipIf(!pgAvailable)('radar volumes on a shared PostgreSQL ledger', () => {
  it('three pollers, 60 volumes of 7 members out of order, one killed mid-run: each volume runs once to success', async () => {
    const url = await freshDatabase();
    const log = { file: '', marker: '' };
    env = await startEngineEnv({
      source: { include: ['**/*.BUFR'], volumes: volumesBlock({ expect: MOMENTS, minimum: 7 }), every: '1s' },
      config: { ledger: url, leaseTime: '2s' },
      plugins: (dir) => {
        log.file = path.join(dir, 'volumes.jsonl');
        log.marker = path.join(dir, 'hanging');
        return [volumeRecorder(log.file, { hangOnce: log.marker, delayMs: 150 })];
      },
    });
    const e = env;
    const members: Array<{ radar: string; t: Date; moment: string }> = [];
    for (const radar of RADARS)
      for (let i = 0; i < TIMES; i++)
        for (const moment of MOMENTS) members.push({ radar, t: new Date(Date.UTC(2026, 10, 23, 12, i * 5)), moment });
    const keys = [...new Set(members.map((m) => memberName(m.radar, m.t, m.moment).key))].sort();
    expect(keys).toHaveLength(60);
    ledger = await PostgresLedger.open({ url, displayUrl: url });
    const l = ledger;

    for (let i = 0; i < 3; i++) daemons.push(await startDaemon(e));
    // One instance's plugin hangs inside a volume it claimed (its cycle, maybe the lister's, stops
    // there): kill that instance as soon as it does, while the members are still arriving.
    let victim: Daemon | undefined;
    let hung: { key: string; pid: number } | undefined;
    const killHung = async () => {
      if (hung || !existsSync(log.marker)) return;
      const [key, pid] = readFileSync(log.marker, 'utf8').split(' ');
      hung = { key: key as string, pid: Number(pid) };
      victim = daemons.find((d) => d.child.pid === hung?.pid);
      expect(victim, `the poller of pid ${pid}`).toBeDefined();
      const [held] = await l.volumes.volumes({ key: hung.key });
      expect(held?.claimedBy).toMatch(new RegExp(`:${pid}:`));
      victim?.child.kill('SIGKILL');
      await victim?.exited;
    };
    // Members arrive in waves, shuffled across volumes: most volumes collect over several polls.
    const arrival = shuffled(members, 7);
    const perWave = Math.ceil(arrival.length / WAVES);
    for (let w = 0; w < WAVES; w++) {
      for (const m of arrival.slice(w * perWave, (w + 1) * perWave))
        await e.put(`in/${memberName(m.radar, m.t, m.moment).name}`, bytesOf(m));
      const listed = Math.min((w + 1) * perWave, arrival.length);
      await waitFor(
        async () => {
          await killHung();
          return (await l.files({ limit: 1000 })).length >= listed;
        },
        { timeoutMs: 60_000, what: `wave ${w + 1} listed` },
      );
    }
    await waitFor(
      async () => {
        await killHung();
        return hung !== undefined;
      },
      { timeoutMs: 30_000, what: 'a volume plugin hanging' },
    );
    const survivors = daemons.filter((d) => d !== victim);
    await Promise.any(survivors.map((d) => d.waitForEvent('instance.swept', (x) => Number(x['volumes']) >= 1, 30_000)));

    await waitFor(async () => (await l.volumes.volumes({ state: 'processed', limit: 100 })).length === keys.length, {
      // A real event on a shared machine: alone the whole test takes 16-36 s.
      timeoutMs: 90_000,
      what: 'every volume processed',
    });
    const runs = readRecords(log.file) as unknown as VolumeRecorded[];
    const perKey = countBy(runs, (r) => r.key);
    expect([...perKey.keys()].sort()).toEqual(keys);
    expect([...perKey.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    for (const r of runs) expect(r.members, r.key).toEqual(MOMENTS);
    // The killed run was taken over: its second attempt succeeded on a survivor.
    const taken = runs.find((r) => r.key === hung?.key);
    expect(taken?.attempt).toBe(2);
    expect(survivors.map((d) => d.child.pid)).toContain(taken?.pid);
    const [done] = await l.volumes.volumes({ key: hung?.key as string });
    expect((await l.volumes.volumeRuns([done!.id])).get(done!.id)).toMatchObject([
      { plugin: 'volume-record', state: 'succeeded', attempts: 2 },
    ]);
    // Every volume is one version with its 7 members; the work was shared.
    const all = await l.volumes.volumes({ limit: 100 });
    expect(all).toHaveLength(60);
    for (const v of all) expect(v.members.map((m) => m.member)).toEqual(MOMENTS);
    expect(new Set(runs.map((r) => r.pid)).size).toBeGreaterThanOrEqual(2);
    // Each member file downloaded once.
    const served = countBy(e.ftp.retrieved(), (p) => p);
    expect([...served.values()].filter((n) => n !== 1)).toEqual([]);
    expect(served.size).toBe(members.length);
    for (const d of survivors) d.child.kill('SIGTERM');
    for (const d of survivors) expect((await d.exited).code).toBe(0);
  }, 240_000);
});
