import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type DecodedMessage, decodeBufr, type RadarSweep } from '../../plugins/bufr/decoder/index.js';
import { bufrFixturesDir, compareWithEccodes, readEccodesJson } from './bufr.compare.js';

const FIXTURES = bufrFixturesDir();
// ecCodes' own local tables (ECMWF centre 98 and others): the dumps were made with them.
const ECCODES_LOCAL = '/usr/share/eccodes/definitions/bufr/tables/0/local';
const HAVE_ECCODES_LOCAL = existsSync(ECCODES_LOCAL);
if (FIXTURES && !HAVE_ECCODES_LOCAL) {
  const { CI: ci } = process.env;
  if (ci === 'true')
    throw new Error(`ecCodes local tables not found at ${ECCODES_LOCAL}; run scripts/install-eccodes.sh`);
  console.warn(`[bufr] ${ECCODES_LOCAL} not found: skipping the ecCodes conformance (run scripts/install-eccodes.sh)`);
}
// Files ecCodes itself cannot decode: ours must decode them or fail per message, never crash.
const ECCODES_FAILS = ['jason2', 'sato_84', 'btem_111', 'multi_invalid_messages', 'prepbufr'];

function bufrFiles(dir: string): string[] {
  const out: string[] = [];
  for (const sub of readdirSync(dir).sort()) {
    const p = path.join(dir, sub);
    if (sub === 'tables' || !existsSync(p) || sub.endsWith('.md')) continue;
    for (const f of readdirSync(p).sort()) if (/\.bufr$/i.test(f)) out.push(path.join(p, f));
  }
  return out;
}

function base(file: string): string {
  return file.replace(/\.bufr$/i, '');
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function sweepBytes(s: RadarSweep): Uint8Array {
  return new Uint8Array(s.data.buffer, s.data.byteOffset, s.data.byteLength);
}

function stats(s: RadarSweep) {
  let valid = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of s.data) {
    if (v === s.nodata || v === s.undetect || Number.isNaN(v)) continue;
    valid++;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { valid, min, max };
}

describe.skipIf(!FIXTURES)('bufr conformance over the shared fixtures', () => {
  const dir = FIXTURES ?? '';
  const totals = { messages: 0, messagesAgree: 0, values: 0, valuesAgree: 0 };
  const files = FIXTURES ? bufrFiles(dir) : [];

  afterAll(() => {
    if (totals.messages === 0) return;
    console.log(
      `BUFR conformance: ${totals.messagesAgree}/${totals.messages} messages, ${totals.valuesAgree}/${totals.values} values agree`,
    );
  });

  it('every message ecCodes decodes gives the same values as bufr_dump, with the shipped tables', () => {
    const problems: string[] = [];
    for (const file of files) {
      const ec = readEccodesJson(base(file));
      if (!ec) continue;
      const res = decodeBufr(readFileSync(file));
      const c = compareWithEccodes(res, ec);
      totals.messages += c.messages;
      totals.messagesAgree += c.messagesAgree;
      totals.values += c.values;
      totals.valuesAgree += c.valuesAgree;
      if (c.mismatches.length > 0) problems.push(`${path.basename(file)}: ${c.mismatches.slice(0, 3).join('; ')}`);
    }
    expect(problems).toEqual([]);
    expect(totals.valuesAgree).toBe(totals.values);
    expect(totals.messagesAgree).toBe(totals.messages);
    expect(totals.messages).toBeGreaterThan(150);
  });

  it.skipIf(!HAVE_ECCODES_LOCAL)(
    "gives the same values with ecCodes' installed local tables passed as --tables",
    () => {
      const problems: string[] = [];
      let messages = 0;
      for (const file of files) {
        const ec = readEccodesJson(base(file));
        if (!ec) continue;
        const c = compareWithEccodes(decodeBufr(readFileSync(file), { tables: ECCODES_LOCAL }), ec);
        messages += c.messagesAgree;
        if (c.mismatches.length > 0) problems.push(`${path.basename(file)}: ${c.mismatches.slice(0, 3).join('; ')}`);
      }
      expect(problems).toEqual([]);
      expect(messages).toBeGreaterThan(150);
    },
  );

  it('matches the pybufrkit value lists (.values.cmp)', () => {
    const parse = (tok: string): unknown => {
      if (tok === 'None') return null;
      const m = /^b?'(.*)'$/s.exec(tok);
      // pybufrkit keeps a missing string as its raw 0xFF bytes; the flat list says null.
      if (m) return /^(\\xff)+$/.test(m[1]!) ? null : m[1]!.trim();
      return Number(tok.replace(/L$/, ''));
    };
    let compared = 0;
    let associatedAllOnes = 0;
    const bad: string[] = [];
    for (const file of files) {
      const cmp = `${base(file)}.values.cmp`;
      if (!existsSync(cmp)) continue;
      const subsets: unknown[][] = [];
      for (const line of readFileSync(cmp, 'utf8').split('\n')) {
        const sp = line.indexOf(' ');
        if (sp < 0) continue;
        if (line.slice(0, sp) === '1') subsets.push([]);
        subsets[subsets.length - 1]!.push(parse(line.slice(sp + 1)));
      }
      const msg = decodeBufr(readFileSync(file)).messages[0] as DecodedMessage;
      expect(msg.ok, path.basename(file)).toBe(true);
      subsets.forEach((want, s) => {
        // Operators count as a value 0 there, as in ecCodes.
        const entries = msg.subsets[s]!;
        const ours = entries.map((e) => (e.kind === 'operator' ? 0 : e.value));
        expect(ours.length, `${path.basename(file)} subset ${s + 1} length`).toBe(want.length);
        want.forEach((w, k) => {
          const o = ours[k];
          const e = entries[k]!;
          // The documented convention: an all-ones associated field is a number (as ecCodes has
          // it), where pybufrkit says missing.
          const allOnesAssociated =
            e.kind === 'associated' && w === null && typeof o === 'number' && Number.isInteger(Math.log2(o + 1));
          if (allOnesAssociated) associatedAllOnes++;
          const ok =
            allOnesAssociated ||
            (typeof w === 'number' && typeof o === 'number'
              ? Math.abs(o - w) <= 1e-6 * Math.max(1, Math.abs(w))
              : o === w);
          if (!ok && bad.length < 10)
            bad.push(`${path.basename(file)} subset ${s + 1} value ${k + 1}: ${String(o)} vs ${String(w)}`);
          compared++;
        });
      });
    }
    expect(bad).toEqual([]);
    expect(compared).toBeGreaterThan(100_000);
    // uegabe.bufr has them (2-04-004 quality class 15); the convention is exercised, not assumed.
    expect(associatedAllOnes).toBeGreaterThan(0);
  });

  it('matches the generator ground truth of the synthetic files (.expected.json)', () => {
    const synth = path.join(dir, 'synthetic');
    // Compressed observations.
    const syn = JSON.parse(readFileSync(path.join(synth, 'synth_synop_ed4_compressed.expected.json'), 'utf8')) as {
      subsets: Record<string, unknown>[];
    };
    const m1 = decodeBufr(readFileSync(path.join(synth, 'synth_synop_ed4_compressed.bufr')))
      .messages[0] as DecodedMessage;
    expect(m1.subsets.length).toBe(syn.subsets.length);
    syn.subsets.forEach((want, s) => {
      for (const [key, value] of Object.entries(want)) {
        const e = m1.subsets[s]!.find((x) => x.key === key);
        expect(e, key).toBeDefined();
        if (typeof value === 'number') expect(e!.value as number).toBeCloseTo(value, 6);
        else expect(e!.value).toEqual(value);
      }
    });
    // Delayed replication, edition 3.
    const tmp = JSON.parse(readFileSync(path.join(synth, 'synth_temp_ed3_delayed.expected.json'), 'utf8')) as {
      delayedReplicationFactor: number;
      station: Record<string, number>;
      levels: Array<{ pressure: number; airTemperature: number | null }>;
    };
    const m2 = decodeBufr(readFileSync(path.join(synth, 'synth_temp_ed3_delayed.bufr'))).messages[0] as DecodedMessage;
    const flat = m2.subsets[0]!;
    expect(flat.find((e) => e.descriptor === '031001')!.value).toBe(tmp.delayedReplicationFactor);
    for (const [k, v] of Object.entries(tmp.station))
      expect(flat.find((e) => e.key === k)!.value as number).toBeCloseTo(v, 6);
    const p = flat.filter((e) => e.key === 'pressure').map((e) => e.value);
    const t = flat.filter((e) => e.key === 'airTemperature').map((e) => e.value);
    expect(p).toEqual(tmp.levels.map((l) => l.pressure));
    t.forEach((v, i) => {
      const want = tmp.levels[i]!.airTemperature;
      if (want === null) expect(v).toBeNull();
      else expect(v as number).toBeCloseTo(want, 6);
    });
    // ODIM radar volume with byte 255 sent as "missing".
    const rad = JSON.parse(readFileSync(path.join(synth, 'synth_radar_odim_ed4_c41.expected.json'), 'utf8')) as {
      station: Record<string, unknown>;
      sweeps: Array<Record<string, unknown>>;
    };
    const m3 = decodeBufr(readFileSync(path.join(synth, 'synth_radar_odim_ed4_c41.bufr')))
      .messages[0] as DecodedMessage;
    const vol = m3.radar!;
    expect(vol.stationType).toBe(rad.station['typeOfStationIdentifier']);
    expect(vol.station).toBe(rad.station['stationIdentifier']);
    expect(vol.latitudeDeg).toBeCloseTo(rad.station['latitude'] as number, 5);
    expect(vol.longitudeDeg).toBeCloseTo(rad.station['longitude'] as number, 5);
    expect(vol.sweeps.length).toBe(rad.sweeps.length);
    rad.sweeps.forEach((w, i) => {
      const s = vol.sweeps[i]!;
      expect(s.elevationDeg).toBeCloseTo(w['elevation_deg'] as number, 6);
      expect([s.rays, s.bins, s.rangeStepM, s.rangeStartM]).toEqual([
        w['nrays'],
        w['nbins'],
        w['range_bin_size_m'],
        w['range_bin_offset_m'],
      ]);
      expect(s.quantity).toBe(w['quantity']);
      expect(s.chunkSizes).toEqual(w['chunk_sizes']);
      expect(sha256(s.compressed)).toBe(w['compressed_sha256']);
      expect(sha256(sweepBytes(s))).toBe(w['decompressed_float64_le_sha256']);
      const st = stats(s);
      expect(st.valid).toBe(w['valid_pixels']);
      expect(st.min).toBeCloseTo(w['min'] as number, 9);
      expect(st.max).toBeCloseTo(w['max'] as number, 9);
      expect(s.startTime).toBe(
        new Date(
          Date.UTC(...((w['start'] as number[]).map((v, k) => (k === 1 ? v - 1 : v)) as [number, number])),
        ).toISOString(),
      );
    });
  });

  it('matches the radar volume summaries (.summary.json, SHA-256 of the inflated arrays)', () => {
    const radarDir = path.join(dir, 'radarlib-invap');
    let sweeps = 0;
    for (const f of readdirSync(radarDir).filter((n) => n.endsWith('.summary.json'))) {
      const sum = JSON.parse(readFileSync(path.join(radarDir, f), 'utf8')) as {
        file: string;
        messages: Array<{
          station: Record<string, unknown>;
          sweeps: Array<Record<string, unknown> & { quantities: Record<string, unknown>[] }>;
        }>;
      };
      const res = decodeBufr(readFileSync(path.join(radarDir, sum.file)), { tables: path.join(radarDir, 'tables') });
      sum.messages.forEach((want, mi) => {
        const m = res.messages[mi] as DecodedMessage;
        expect(m.ok, sum.file).toBe(true);
        const vol = m.radar!;
        expect(vol.latitudeDeg).toBeCloseTo(want.station['latitude'] as number, 5);
        expect(vol.longitudeDeg).toBeCloseTo(want.station['longitude'] as number, 5);
        expect(vol.station).toBe(want.station['l001193StationIdentifier']);
        const flatWant = want.sweeps.flatMap((s) => s.quantities.map((q) => ({ s, q })));
        expect(vol.sweeps.length).toBe(flatWant.length);
        flatWant.forEach(({ s: ws, q }, i) => {
          const s = vol.sweeps[i]!;
          const where = `${sum.file} sweep ${i}`;
          expect(s.elevationDeg, where).toBeCloseTo(ws['elevation_deg'] as number, 6);
          expect([s.rays, s.bins, s.rangeStepM, s.rangeStartM, s.startAzimuthDeg], where).toEqual([
            ws['nrays'],
            ws['nbins'],
            ws['range_bin_size_m'],
            ws['range_bin_offset_m'],
            ws['antenna_beam_azimuth_deg'],
          ]);
          expect(s.productCode, where).toBe(q['product_type']);
          expect(s.chunkSizes.length, where).toBe(q['chunks']);
          expect(s.compressedBytes, where).toBe(q['compressed_bytes']);
          expect(sha256(s.compressed), where).toBe(q['compressed_sha256']);
          expect(s.data.length, where).toBe(q['float64_count']);
          expect(sha256(sweepBytes(s)), where).toBe(q['inflated_sha256']);
          const st = stats(s);
          expect(st.valid, where).toBe(q['valid_pixels']);
          sweeps++;
        });
      });
    }
    expect(sweeps).toBeGreaterThanOrEqual(36);
  });

  it('decodes the files ecCodes fails on, or fails per message with a precise error', () => {
    for (const name of ECCODES_FAILS) {
      const file = files.find((f) => path.basename(base(f)) === name);
      expect(file, name).toBeDefined();
      const res = decodeBufr(readFileSync(file!));
      expect(res.messages.length, name).toBeGreaterThan(0);
      for (const m of res.messages) {
        if (m.ok) continue;
        expect(m.error.code, name).toMatch(/^BUFR_[A-Z_]+$/);
        expect(m.error.message, name).toMatch(/^message \d+ \(byte \d+/);
      }
    }
  });
});
