import { existsSync, readFileSync } from 'node:fs';
import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Plugin, PluginVolume } from '../../src/plugins/api.js';
import { pluginHarness } from '../../test/helpers/plugin-test-context.js';
import { memberBytes, memberName } from '../../test/helpers/radar-volumes.js';
import { bufrFixturesDir } from '../../test/integration/bufr.compare.js';
import radarVolume, { type VolumeManifest } from './index.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function harness(options: Record<string, unknown>) {
  // The harness builds a file plugin's context; a volume plugin's is the same.
  const h = await pluginHarness(radarVolume as unknown as Plugin, { ...options });
  cleanups.push(h.cleanup);
  return h;
}

type Harness = Awaited<ReturnType<typeof harness>>;

/** Land member files and describe their volume as the engine would. */
async function volumeOf(
  h: Harness,
  key: string,
  files: Array<{ member: string; name: string; bytes: Uint8Array | Buffer }>,
  over: Partial<PluginVolume> = {},
): Promise<PluginVolume> {
  const members = [];
  for (const f of files) {
    const landed = await h.land(`in/${f.name}`, Buffer.from(f.bytes));
    members.push({
      member: f.member,
      localPath: landed.localPath,
      remotePath: landed.remotePath,
      sizeBytes: landed.sizeBytes,
      mtimeMs: landed.mtimeMs,
    });
  }
  return {
    key,
    source: 'radar-test',
    version: 1,
    fields: { radar: key.split('_')[0] as string },
    members,
    complete: true,
    partial: false,
    missing: [],
    firstMemberMs: Date.parse('2026-11-23T12:00:40Z'),
    lastMemberMs: Date.parse('2026-11-23T12:01:10Z'),
    attempt: 1,
    ...over,
  };
}

/** Width and height from a PNG's IHDR, after checking the signature. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  expect([...bytes.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

const T = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));

describe('radar-volume plugin', () => {
  it('writes a manifest of every member and a quicklook of the lowest DBZH sweep', async () => {
    const h = await harness({ out: 'OUT' });
    const out = path.join(h.dir, 'out');
    (h.ctx as { options: { out: string } }).options.out = out;
    const files = ['DBZH', 'KDP', 'VRAD'].map((m) => ({
      member: m,
      name: memberName('RMA1', T, m).name,
      bytes: memberBytes('RMA1', T, m),
    }));
    const key = memberName('RMA1', T, 'DBZH').key;
    const volume = await volumeOf(h, key, files, { partial: true, complete: false, missing: ['ZDR'] });
    await radarVolume.process(volume, h.ctx as never);
    const dir = path.join(out, 'radar-test', key);
    const manifest = JSON.parse(await readFile(path.join(dir, `${key}.volume.json`), 'utf8')) as VolumeManifest;
    expect(manifest).toMatchObject({
      key,
      version: 1,
      completeness: { complete: false, partial: true, present: ['DBZH', 'KDP', 'VRAD'], missing: ['ZDR'] },
      site: { station: 'RMA1', latitudeDeg: -31.4, longitudeDeg: -64.2, heightM: 480 },
      elevationsDeg: [0.5, 1.3],
      sweeps: 6,
      quicklook: { moment: 'DBZH', elevationDeg: 0.5, file: `${key}.DBZH.png` },
      times: { firstMemberLanded: '2026-11-23T12:00:40.000Z', scanStart: '2026-11-23T12:00:00.000Z' },
    });
    expect(manifest.members.map((m) => [m.member, m.sweeps.length, m.sweeps[0]?.quantity])).toEqual([
      ['DBZH', 2, 'DBZH'],
      ['KDP', 2, 'KDP'],
      ['VRAD', 2, 'VRAD'],
    ]);
    expect(manifest.members[0]?.sweeps[0]).toMatchObject({ rays: 36, bins: 24, rangeStepM: 1000 });
    const png = await readFile(path.join(dir, `${key}.DBZH.png`));
    expect(pngSize(png)).toEqual({ width: 710, height: 600 });
    expect(h.emitted.map((e) => e.kind)).toEqual(['radar-volume.quicklook', 'radar-volume.manifest']);
  });

  it('records a member that is not radar BUFR, and fails a volume of which nothing decodes', async () => {
    const h = await harness({ out: 'OUT', quicklook: ['VRAD'] });
    const out = path.join(h.dir, 'out');
    (h.ctx as { options: { out: string } }).options.out = out;
    const good = { member: 'VRAD', name: 'RMA2_VRAD.BUFR', bytes: memberBytes('RMA2', T, 'VRAD') };
    const bad = { member: 'DBZH', name: 'RMA2_DBZH.BUFR', bytes: Buffer.from('not bufr at all') };
    await radarVolume.process(await volumeOf(h, 'RMA2_x', [good, bad]), h.ctx as never);
    const manifest = JSON.parse(
      await readFile(path.join(out, 'radar-test', 'RMA2_x', 'RMA2_x.volume.json'), 'utf8'),
    ) as VolumeManifest;
    expect(manifest.members.find((m) => m.member === 'DBZH')).toMatchObject({
      error: 'no BUFR message in the file',
      sweeps: [],
    });
    expect(manifest.quicklook).toMatchObject({ moment: 'VRAD' });
    await expect(radarVolume.process(await volumeOf(h, 'RMA3_x', [bad]), h.ctx as never)).rejects.toMatchObject({
      code: 'RADAR_VOLUME_UNDECODABLE',
      retryable: false,
    });
    await expect(radarVolume.process(await volumeOf(h, '../up', [good]), h.ctx as never)).rejects.toMatchObject({
      code: 'RADAR_VOLUME_BAD_KEY',
    });
  });

  const fixtures = bufrFixturesDir();
  it.skipIf(!fixtures)('real INVAP RMA11 members (15 sweeps each) make one manifest and a DBZH quicklook', async () => {
    const dir = path.join(fixtures as string, 'radarlib-invap');
    const h = await harness({ out: 'OUT', tables: path.join(dir, 'tables') });
    const out = path.join(h.dir, 'out');
    (h.ctx as { options: { out: string } }).options.out = out;
    const key = 'RMA11_0315_01_20251020T152828Z';
    const names = ['DBZH', 'KDP'].map((m) => ({ member: m, name: `RMA11_0315_01_${m}_20251020T152828Z.BUFR` }));
    const files = names.map((n) => ({ ...n, bytes: readFileSync(path.join(dir, n.name)) }));
    await radarVolume.setup?.(h.ctx as never);
    const volume = await volumeOf(h, key, files, { missing: ['VRAD'], partial: true, complete: false });
    await radarVolume.process(volume, h.ctx as never);
    const outDir = path.join(out, 'radar-test', key);
    const manifest = JSON.parse(await readFile(path.join(outDir, `${key}.volume.json`), 'utf8')) as VolumeManifest;
    for (const n of names) {
      const summary = JSON.parse(readFileSync(path.join(dir, n.name.replace('.BUFR', '.summary.json')), 'utf8')) as {
        messages: Array<{ sweeps: Array<{ elevation_deg: number; nrays: number; nbins: number }> }>;
      };
      const expected = summary.messages[0]?.sweeps ?? [];
      const got = manifest.members.find((m) => m.member === n.member);
      expect(got?.error).toBeUndefined();
      expect(got?.sweeps.map((s) => [s.elevationDeg, s.rays, s.bins])).toEqual(
        expected.map((s) => [Math.round(s.elevation_deg * 1000) / 1000, s.nrays, s.nbins]),
      );
    }
    expect(manifest.sweeps).toBe(30);
    expect(manifest.site.latitudeDeg).toBeCloseTo(-27.5026, 3);
    expect(manifest.elevationsDeg[0]).toBeCloseTo(0.53, 2);
    expect(manifest.quicklook).toMatchObject({ moment: 'DBZH' });
    const png = path.join(outDir, `${key}.DBZH.png`);
    expect(pngSize(await readFile(png))).toEqual({ width: 710, height: 600 });
    // Kept for a look when asked (never committed).
    const keep = process.env['POLLER_KEEP_QUICKLOOK'];
    if (keep && existsSync(path.dirname(keep))) await copyFile(png, keep);
  });
});
