import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { encodeRadarVolume } from '../../plugins/bufr/encoder/radar.js';
import { encodeSynop } from '../../plugins/bufr/encoder/synop.js';
import plugin from '../../plugins/bufr/index.js';
import { PermanentError } from '../../src/errors.js';

const TIME = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));

async function setup() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bufr-plugin-'));
  const out = path.join(dir, 'out');
  const emitted: Array<{ path: string; kind?: string }> = [];
  const options = plugin.options!.parse({ out, quicklook: true }) as {
    out: string;
    nested: boolean;
    quicklook: boolean;
  };
  const ctx = {
    log: pino({ level: 'silent' }),
    options,
    stateDir: dir,
    signal: new AbortController().signal,
    attempt: 1,
    emit: (o: { path: string; kind?: string }) => {
      emitted.push(o);
    },
  };
  const land = async (name: string, bytes: Uint8Array) => {
    const localPath = path.join(dir, name.replaceAll('/', '_'));
    await writeFile(localPath, bytes);
    return {
      localPath,
      remotePath: name,
      source: 'radar-ftp',
      sizeBytes: bytes.length,
      mtimeMs: TIME.getTime(),
      attempt: 1,
    };
  };
  return { dir, out, ctx, emitted, land };
}

function readNpy(buf: Buffer): { shape: number[]; data: Float64Array } {
  expect(buf.subarray(0, 6).toString('latin1')).toBe('\x93NUMPY');
  const hlen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + hlen).toString('latin1');
  expect((10 + hlen) % 64).toBe(0);
  const shape = /'shape': \(([^)]*)\)/
    .exec(header)![1]!
    .split(',')
    .filter((s) => s.trim() !== '')
    .map(Number);
  const body = buf.subarray(10 + hlen);
  const data = new Float64Array(body.length / 8);
  for (let i = 0; i < data.length; i++) data[i] = body.readDoubleLE(i * 8);
  return { shape, data };
}

describe('bufr plugin', () => {
  it('writes a JSON document and one .npy per sweep for a radar volume', async () => {
    const { out, ctx, emitted, land } = await setup();
    const data = new Float64Array(10 * 20).map((_, i) => (i % 3 === 0 ? Number.NaN : i / 4));
    const bytes = encodeRadarVolume({
      radar: 'DEMO',
      time: TIME,
      quantity: 'DBZH',
      sweeps: [
        { elevationDeg: 0.5, rays: 10, bins: 20, data },
        { elevationDeg: 1.5, rays: 10, bins: 20, data },
      ],
    });
    const file = await land('2026/11/23/DEMO_DBZH.BUFR', bytes);
    await plugin.process(file, ctx as never);
    const base = path.join(out, 'radar-ftp', '2026/11/23/DEMO_DBZH.BUFR');
    const doc = JSON.parse(await readFile(`${base}.json`, 'utf8')) as {
      messages: Array<{ ok: boolean; radar: { station: string; sweeps: Array<{ file: string; rays: number }> } }>;
    };
    expect(doc.messages[0]!.ok).toBe(true);
    expect(doc.messages[0]!.radar.station).toBe('DEMO');
    expect(doc.messages[0]!.radar.sweeps.map((s) => s.file)).toEqual([
      'DEMO_DBZH.BUFR.sweep0.npy',
      'DEMO_DBZH.BUFR.sweep1.npy',
    ]);
    const npy = readNpy(await readFile(`${base}.sweep1.npy`));
    expect(npy.shape).toEqual([10, 20]);
    expect(npy.data[1]).toBe(0.25);
    expect(npy.data[0]).toBe(-Number.MAX_VALUE);
    expect((await stat(`${base}.sweep0.png`)).size).toBeGreaterThan(100);
    expect(emitted.map((e) => e.kind).sort()).toEqual([
      'bufr.json',
      'bufr.quicklook',
      'bufr.quicklook',
      'bufr.sweep',
      'bufr.sweep',
    ]);
  });

  it('writes the flat values of an observation file', async () => {
    const { out, ctx, land } = await setup();
    const bytes = encodeSynop([
      {
        block: 10,
        station: 384,
        latitudeDeg: 52.46,
        longitudeDeg: 13.4,
        heightM: 48,
        time: TIME,
        airTemperatureK: 275.35,
        pressurePa: 100900,
      },
    ]);
    await plugin.process(await land('obs/synop.bufr', bytes), ctx as never);
    const doc = JSON.parse(await readFile(path.join(out, 'radar-ftp', 'obs/synop.bufr.json'), 'utf8')) as {
      messages: Array<{ subsets: Array<Array<{ key: string; value: unknown }>> }>;
    };
    expect(doc.messages[0]!.subsets[0]!.find((e) => e.key === 'airTemperature')!.value).toBe(275.35);
  });

  it('fails permanently on a file without a decodable message, and on a path escaping the output root', async () => {
    const { ctx, land } = await setup();
    const garbage = await land('bad.bufr', new TextEncoder().encode('not a bufr file at all'));
    await expect(plugin.process(garbage, ctx as never)).rejects.toMatchObject({ code: 'BUFR_NO_MESSAGE' });
    const truncated = encodeSynop([
      {
        block: 1,
        station: 1,
        latitudeDeg: 0,
        longitudeDeg: 0,
        heightM: 0,
        time: TIME,
        airTemperatureK: 273,
        pressurePa: 1e5,
      },
    ]);
    const cut = await land('cut.bufr', truncated.subarray(0, 40));
    const err = await Promise.resolve(plugin.process(cut, ctx as never)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toMatch(/^BUFR_/);
    const outside = await land('x.bufr', truncated);
    await expect(plugin.process({ ...outside, remotePath: '../../etc/x.bufr' }, ctx as never)).rejects.toMatchObject({
      code: 'BUFR_BAD_PATH',
    });
  });
});
