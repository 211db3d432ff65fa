import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { decodeBufr } from '../../plugins/bufr/decoder/index.js';
import { OPERA_LOCAL } from '../../plugins/bufr/decoder/tables.js';
import { BitWriter } from '../../plugins/bufr/encoder/bit-writer.js';
import { assembleMessage, type EncodeValue, encodeMessage } from '../../plugins/bufr/encoder/message.js';
import { encodeRadarVolume } from '../../plugins/bufr/encoder/radar.js';
import { rng } from '../../plugins/bufr/encoder/sample.js';
import { encodeSatelliteSwath } from '../../plugins/bufr/encoder/satellite.js';
import { encodeSynop } from '../../plugins/bufr/encoder/synop.js';
import { compareWithEccodes, type EcEntry } from './bufr.compare.js';

const run = promisify(execFile);

function haveBufrDump(): boolean {
  try {
    execFileSync('bufr_dump', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const HAVE = haveBufrDump();
if (!HAVE) {
  const { CI: ci } = process.env;
  if (ci === 'true') throw new Error('bufr_dump not found on PATH; run scripts/install-eccodes.sh');
  console.warn('[bufr] bufr_dump not on PATH: skipping the ecCodes cross-check (run scripts/install-eccodes.sh)');
}

/** ecCodes-format local tables for the OPERA radar descriptors, under <dir>/bufr/tables/0/local/2/247/0. */
async function operaDefinitions(dir: string): Promise<string> {
  const local = path.join(dir, 'defs', 'bufr', 'tables', '0', 'local', '2', '247', '0');
  await mkdir(local, { recursive: true });
  const six = (n: number) => String(n).padStart(6, '0');
  const el = ['#code|abbreviation|type|name|unit|scale|reference|width|crex_unit|crex_scale|crex_width'];
  for (const e of OPERA_LOCAL.elements.values()) {
    const type = e.isString ? 'string' : /TABLE/.test(e.unit) ? 'table' : 'long';
    el.push(
      `${six(e.code)}|${e.key}|${type}|${e.name.toUpperCase()}|${e.unit}|${e.scale}|${e.reference}|${e.width}|${e.unit}|${e.scale}|5`,
    );
  }
  await writeFile(path.join(local, 'element.table'), `${el.join('\n')}\n`);
  const seq = [...OPERA_LOCAL.sequences].map(([k, v]) => `"${six(k)}" = [ ${v.map(six).join(', ')} ]`);
  await writeFile(path.join(local, 'sequence.def'), `${seq.join('\n')}\n`);
  return path.join(dir, 'defs');
}

async function eccodesDump(file: string, defs?: string): Promise<EcEntry[]> {
  const env = defs
    ? { ...process.env, ECCODES_DEFINITION_PATH: `${defs}:/usr/share/eccodes/definitions` }
    : process.env;
  // bufr_dump writes a string's bytes as they are; read them as Latin-1, as the decoder maps them.
  const { stdout } = await run('bufr_dump', ['-jf', file], { env, maxBuffer: 256 * 1024 * 1024, encoding: 'latin1' });
  return (JSON.parse(stdout) as { messages: EcEntry[] }).messages;
}

describe.skipIf(!HAVE)('bufr cross-check with ecCodes on freshly encoded messages', () => {
  it('randomised observations, profiles and operators decode the same in ecCodes and here', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bufr-eccodes-'));
    const { BUFR_CROSSCHECK_SEED: seed } = process.env;
    const r = rng(Number(seed ?? 20261123));
    const t = new Date(Date.UTC(2026, 10, 23, 6, 0, 0));
    const maybe = <T>(v: T): T | null => (r() < 0.15 ? null : v);
    const messages: Array<{ name: string; bytes: Uint8Array }> = [];
    for (let k = 0; k < 4; k++) {
      const n = 1 + Math.floor(r() * 12);
      const obs = Array.from({ length: n }, (_, i) => ({
        block: Math.floor(r() * 99),
        station: Math.floor(r() * 999),
        name: r() < 0.2 ? undefined : `STN ${Math.floor(r() * 1e4)}`.slice(0, 20),
        latitudeDeg: Math.round((r() * 180 - 90) * 1e5) / 1e5,
        longitudeDeg: Math.round((r() * 360 - 180) * 1e5) / 1e5,
        heightM: maybe(Math.round(r() * 40000) / 10 - 400),
        time: new Date(t.getTime() + i * 60_000),
        airTemperatureK: maybe(Math.round((220 + r() * 100) * 100) / 100),
        dewpointK: maybe(Math.round((200 + r() * 100) * 100) / 100),
        pressurePa: maybe(Math.round((50000 + r() * 60000) / 10) * 10),
        relativeHumidityPct: maybe(Math.floor(r() * 100)),
        windDirectionDeg: maybe(Math.floor(r() * 360)),
        windSpeedMs: maybe(Math.round(r() * 400) / 10),
      }));
      messages.push({ name: `synop-${k}`, bytes: encodeSynop(obs, { compressed: k % 2 === 0 }) });
    }
    for (let k = 0; k < 3; k++) {
      const levels = Math.floor(r() * 40);
      const v: EncodeValue[] = [Math.floor(r() * 99), Math.floor(r() * 999), 2026, 11, 23, 12, 0, 52.5, 13.4, levels];
      for (let i = 0; i < levels; i++)
        v.push(100000 - i * 2000, maybe(Math.round((300 - i * 2 + r()) * 10) / 10), maybe(Math.floor(r() * 360)));
      messages.push({
        name: `profile-${k}`,
        bytes: encodeMessage({
          edition: k === 0 ? 3 : k === 1 ? 2 : 4,
          centre: 98,
          category: 2,
          masterVersion: k === 0 ? 13 : 33,
          time: t,
          descriptors: [301001, 301011, 301012, 301021, 103000, 31001, 7004, 12101, 11001],
          subsets: [v],
        }),
      });
    }
    messages.push({
      name: 'operators',
      bytes: encodeMessage({
        centre: 98,
        category: 0,
        masterVersion: 33,
        time: t,
        descriptors: [201131, 202129, 12101, 201000, 202000, 207002, 7030, 207000, 208005, 1015, 208000, 1015],
        subsets: [
          [Math.round(r() * 300000) / 1000, Math.round(r() * 2000 * 1000) / 1000, 'ABCDE', 'LONG STATION NAME'],
        ],
      }),
    });
    // 2-03 new reference values, 2-04 associated fields with 0-31-021, 2-05 character data.
    const refs: EncodeValue[] = [
      Math.floor(r() * 99),
      -1000 - Math.floor(r() * 5000),
      Math.round(r() * 3000) / 100,
      Math.round((250 + r() * 50) * 100) / 100,
    ];
    messages.push({
      name: 'new-reference-values',
      bytes: encodeMessage({
        centre: 98,
        category: 0,
        masterVersion: 33,
        time: t,
        descriptors: [1001, 203014, 12101, 203255, 12101, 203000, 12101],
        subsets: [refs],
      }),
    });
    // The same compressed, where the new reference values are YYY bits with no increment width.
    messages.push({
      name: 'new-reference-values-compressed',
      bytes: encodeMessage({
        centre: 98,
        category: 0,
        masterVersion: 33,
        time: t,
        compressed: true,
        descriptors: [1001, 203014, 12101, 203255, 12101, 203000, 12101],
        subsets: [0, 1, 2].map((i) => [i, refs[1]!, Math.round(r() * 3000) / 100 - i, refs[3]!]),
      }),
    });
    // An associated field of all ones is a number (255 for 8 bits), not missing, as ecCodes has it.
    const assoc = (): number => (r() < 0.4 ? 255 : Math.floor(r() * 255));
    for (const compressed of [false, true]) {
      const subset = (): EncodeValue[] => [
        Math.floor(r() * 99),
        1,
        assoc(),
        Math.round((250 + r() * 50) * 10) / 10,
        assoc(),
        Math.floor(r() * 360),
        `T${Math.floor(r() * 1e6)}`,
      ];
      messages.push({
        name: `associated-text-${compressed}`,
        bytes: encodeMessage({
          centre: 98,
          category: 0,
          masterVersion: 33,
          time: t,
          compressed,
          descriptors: [1001, 204008, 31021, 12101, 11001, 204000, 205010],
          subsets: compressed ? [subset(), subset(), subset()] : [subset()],
        }),
      });
    }
    // Quality information (2-22) through a bitmap defined for reuse (2-36) and reused (2-37), as in
    // satellite wind (AMV) messages: percent confidence for the elements the bitmap marks.
    const amv = [1007, 5001, 6001, 11001, 11002, 222000, 236000, 101005, 31031, 1031, 1032, 101002, 33007];
    const amvSubset = (): EncodeValue[] => [
      784,
      Math.round((r() * 120 - 60) * 100) / 100,
      Math.round((r() * 360 - 180) * 100) / 100,
      Math.floor(r() * 360),
      Math.round(r() * 500) / 10,
      1,
      1,
      1,
      0,
      0,
      254,
      1,
      maybe(Math.floor(r() * 100)),
      maybe(Math.floor(r() * 100)),
      254,
      2,
      maybe(Math.floor(r() * 100)),
      maybe(Math.floor(r() * 100)),
    ];
    for (const compressed of [false, true])
      messages.push({
        name: `quality-information-${compressed}`,
        bytes: encodeMessage({
          centre: 98,
          category: 5,
          masterVersion: 33,
          time: t,
          compressed,
          descriptors: [...amv, 222000, 237000, 1031, 1032, 101002, 33007],
          subsets: compressed ? [amvSubset(), amvSubset(), amvSubset()] : [amvSubset()],
        }),
      });
    // Quality operators: difference statistics (2-25) and replaced values (2-32) through a reused bitmap.
    const q = new BitWriter();
    q.writeBits(28015, 16);
    q.writeBits(27515, 16);
    q.writeBits(1, 1);
    q.writeBits(0, 1);
    q.writeBits(65536 - Math.floor(r() * 500), 17);
    q.writeBits(27000 + Math.floor(r() * 1000), 16);
    messages.push({
      name: 'quality-bitmap',
      bytes: assembleMessage(
        {
          centre: 98,
          category: 0,
          time: t,
          subsetCount: 1,
          descriptors: [12101, 12103, 225000, 236000, 101002, 31031, 225255, 232000, 237000, 232255, 235000],
        },
        q.toBytes(),
      ),
    });
    // A satellite-like compressed swath: constant and varying columns, missing brightness temperatures.
    messages.push({ name: 'swath', bytes: encodeSatelliteSwath({ subsets: 400, channels: 7, missingShare: 0.1 }) });
    // ECMWF local descriptors (local table version 1, shipped): elements and a local sequence
    // (3-01-194: carrier balloon identifier, position, date and time), compressed and not.
    for (const compressed of [false, true]) {
      const local = (i: number): EncodeValue[] => [
        Math.floor(r() * 255),
        `BAL${i}`,
        Math.floor(r() * 360),
        Math.floor(r() * 100),
        Math.floor(r() * 255),
        Math.floor(r() * 15),
        2026,
        11,
        23,
        12,
        i,
        Math.round((r() * 180 - 90) * 100) / 100,
        Math.round((r() * 360 - 180) * 100) / 100,
        Math.round(r() * 20000) - 400,
      ];
      messages.push({
        name: `ecmwf-local-${compressed}`,
        bytes: encodeMessage({
          edition: 4,
          centre: 98,
          localVersion: 1,
          category: 0,
          masterVersion: 13,
          time: t,
          compressed,
          descriptors: [1201, 301194],
          subsets: compressed ? [local(1), local(2), local(3)] : [local(1)],
        }),
      });
    }
    // String edge cases: all-ones, NUL- and blank-filled, leading and trailing blanks.
    const strings = [
      '\xff'.repeat(20),
      '\0'.repeat(20),
      '\0AB',
      ' '.repeat(20),
      '  LEAD',
      'TRAIL   ',
      'AB\0\0',
      'A\0B',
      // All ones up to the first NUL is missing; all ones then blanks is missing when uncompressed
      // and data when compressed (ecCodes' dump, followed here).
      `${'\xff'.repeat(8)}${'\0'.repeat(12)}`,
      `${'\xff'.repeat(8)}${' '.repeat(12)}`,
    ];
    for (const compressed of [false, true])
      messages.push({
        name: `strings-${compressed}`,
        bytes: encodeMessage({
          centre: 98,
          category: 0,
          masterVersion: 33,
          time: t,
          compressed,
          descriptors: [1015],
          subsets: strings.map((s) => [s]),
        }),
      });
    let totals = { messages: 0, agree: 0, values: 0, valuesAgree: 0 };
    for (const m of messages) {
      const file = path.join(dir, `${m.name}.bufr`);
      await writeFile(file, m.bytes);
      const c = compareWithEccodes(decodeBufr(m.bytes), await eccodesDump(file));
      expect(c.mismatches, m.name).toEqual([]);
      expect(c.values, m.name).toBeGreaterThan(0);
      totals = {
        messages: totals.messages + c.messages,
        agree: totals.agree + c.messagesAgree,
        values: totals.values + c.values,
        valuesAgree: totals.valuesAgree + c.valuesAgree,
      };
    }
    console.log(
      `ecCodes cross-check: ${totals.agree}/${totals.messages} messages, ${totals.valuesAgree}/${totals.values} values agree`,
    );
    expect(totals.agree).toBe(messages.length);
    expect(totals.messages).toBe(messages.length);
  });

  it('a polar volume from the encoder decodes the same in ecCodes (with OPERA local tables) and here', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bufr-eccodes-radar-'));
    const defs = await operaDefinitions(dir);
    const r = rng(7);
    const rays = 24;
    const bins = 16;
    const data = new Float64Array(rays * bins).map(() => (r() < 0.3 ? Number.NaN : Math.round(r() * 7000) / 100 - 10));
    const bytes = encodeRadarVolume({
      radar: 'XCHK',
      time: new Date(Date.UTC(2026, 10, 23, 12, 0, 0)),
      quantity: 'VRAD',
      latitudeDeg: 45.1234,
      longitudeDeg: 7.5,
      heightM: 500,
      sweeps: [
        { elevationDeg: 0.5, rays, bins, rangeStepM: 250, data },
        { elevationDeg: 2.5, rays, bins, rangeStepM: 250, rangeStartM: 50, data },
      ],
    });
    const file = path.join(dir, 'volume.bufr');
    await writeFile(file, bytes);
    const ec = await eccodesDump(file, defs);
    const ours = decodeBufr(bytes);
    // Our byte-run path folds each 0-30-198 run into one entry; compare everything else by index.
    const m = ours.messages[0]!;
    expect(m.ok).toBe(true);
    if (!m.ok) return;
    const byIndex = new Map(m.subsets[0]!.map((e) => [e.index, e]));
    let compared = 0;
    let bytesCompared = 0;
    for (const e of ec) {
      if (e.index === undefined) continue;
      const run = [...byIndex.values()].find(
        (x) => x.bytes && e.index! >= x.index && e.index! < x.index + x.bytes.length,
      );
      if (run) {
        expect(e.code).toBe('030198');
        // ecCodes reports byte 255 as missing; the run keeps it as 255.
        expect(run.bytes![e.index! - run.index]).toBe(e.value === null ? 255 : e.value);
        bytesCompared++;
        continue;
      }
      const o = byIndex.get(e.index);
      expect(o?.descriptor, `index ${e.index}`).toBe(e.code);
      if (typeof e.value === 'number') expect(o!.value as number).toBeCloseTo(e.value, 4);
      else expect(o!.value).toEqual(typeof e.value === 'string' ? e.value.trim() : e.value);
      compared++;
    }
    expect(compared).toBeGreaterThan(40);
    expect(bytesCompared).toBe(m.radar!.sweeps.reduce((a, s) => a + s.compressedBytes, 0));
  });
});
