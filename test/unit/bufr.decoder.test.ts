import { describe, expect, it } from 'vitest';
import { type DecodedMessage, decodeBufr, toNestedJson } from '../../plugins/bufr/decoder/index.js';
import { findMessages } from '../../plugins/bufr/decoder/sections.js';
import { BitWriter } from '../../plugins/bufr/encoder/bit-writer.js';
import { assembleMessage, encodeMessage } from '../../plugins/bufr/encoder/message.js';
import { encodeRadarVolume } from '../../plugins/bufr/encoder/radar.js';
import { encodeSynop } from '../../plugins/bufr/encoder/synop.js';

const TIME = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));

function only(bytes: Uint8Array): DecodedMessage {
  const res = decodeBufr(bytes);
  expect(res.messages.length).toBe(1);
  const m = res.messages[0]!;
  if (!m.ok) throw m.error;
  return m;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const OBS = [0, 1, 2].map((i) => ({
  block: 10,
  station: 380 + i,
  name: `ST${i}`,
  latitudeDeg: 52.1 + i,
  longitudeDeg: 13.4,
  heightM: i === 2 ? null : 50 + i,
  time: TIME,
  airTemperatureK: i === 1 ? null : 280.15 + i,
  pressurePa: 101320,
  windSpeedMs: 3.2,
}));

describe('bufr decoder', () => {
  it('follows the ecCodes string conventions: all-ones and NUL-filled missing, trailing blanks dropped, leading kept', () => {
    const cases: Array<[string, string | null]> = [
      ['\xff'.repeat(20), null],
      ['\0'.repeat(20), null],
      ['\0AB', null],
      [' '.repeat(20), ' '],
      ['  LEAD', '  LEAD'],
      ['TRAIL   ', 'TRAIL'],
      ['AB\0\0\0', 'AB'],
      ['A\0B', 'A'],
      [' A B ', ' A B'],
    ];
    for (const compressed of [false, true]) {
      const bytes = encodeMessage({
        centre: 98,
        category: 0,
        masterVersion: 33,
        time: TIME,
        compressed,
        descriptors: [1015],
        subsets: cases.map(([raw]) => [raw]),
      });
      const m = only(bytes);
      expect(
        m.subsets.map((s) => s[0]!.value),
        `compressed ${compressed}`,
      ).toEqual(cases.map(([, want]) => want));
    }
  });

  it('round-trips compressed observations with strings and missing values', () => {
    const m = only(encodeSynop(OBS, { compressed: true }));
    expect(m.header.compressed).toBe(true);
    expect(m.subsets.length).toBe(3);
    const get = (s: number, key: string) => m.subsets[s]!.find((e) => e.key === key)?.value;
    expect(get(0, 'stationOrSiteName')).toBe('ST0');
    expect(get(2, 'stationNumber')).toBe(382);
    expect(get(1, 'airTemperature')).toBeNull();
    expect(get(2, 'airTemperature')).toBeCloseTo(282.15, 6);
    expect(get(2, 'heightOfStationGroundAboveMeanSeaLevel')).toBeNull();
    expect(get(1, 'latitude')).toBeCloseTo(53.1, 6);
  });

  it('round-trips the same observations uncompressed', () => {
    const m = only(encodeSynop(OBS, { compressed: false }));
    expect(m.header.compressed).toBe(false);
    expect(m.subsets[1]!.find((e) => e.key === 'stationOrSiteName')?.value).toBe('ST1');
    // ecCodes numbering: the index runs on across subsets.
    expect(m.subsets[1]![0]!.index).toBe(m.subsets[0]!.length + 1);
  });

  it('finds messages between GTS headers and garbage; a truncated tail fails alone', () => {
    const a = encodeSynop(OBS.slice(0, 1));
    const b = encodeSynop(OBS.slice(1, 2));
    const gts = new TextEncoder().encode('\x01\r\r\n123\r\r\nISMD01 EDZW 231200\r\r\n');
    const stream = concat(gts, a, new Uint8Array([0, 0x42, 0x55, 0x46]), gts, b, gts, a.subarray(0, a.length - 9));
    const res = decodeBufr(stream);
    expect(res.messages.map((m) => m.ok)).toEqual([true, true, false]);
    const last = res.messages[2]!;
    expect(!last.ok && last.error.code).toBe('BUFR_TRUNCATED');
    expect(findMessages(new Uint8Array(100)).length).toBe(0);
  });

  it('reads a delayed replication factor of all ones as a count, not missing', () => {
    const values = Array.from({ length: 255 }, (_, i) => i % 100);
    const bytes = encodeMessage({
      centre: 98,
      category: 0,
      masterVersion: 33,
      time: TIME,
      descriptors: [101000, 31001, 12101],
      subsets: [[255, ...values.map((v) => 250 + v / 10)]],
    });
    const m = only(bytes);
    const factor = m.subsets[0]![0]!;
    expect([factor.descriptor, factor.value]).toEqual(['031001', 255]);
    expect(m.subsets[0]!.length).toBe(256);
  });

  it('applies operators 2-01, 2-02, 2-07 and 2-08', () => {
    const bytes = encodeMessage({
      centre: 98,
      category: 0,
      masterVersion: 33,
      time: TIME,
      descriptors: [201131, 202129, 12101, 201000, 202000, 207002, 7030, 207000, 208005, 1015, 208000],
      subsets: [[283.456, 1234.5678, 'ABCDE']],
    });
    const m = only(bytes);
    const [t, h, name] = m.subsets[0]!;
    expect(t!.scale).toBe(3);
    expect(t!.value as number).toBeCloseTo(283.456, 6);
    expect(h!.scale).toBe(3);
    expect(h!.value as number).toBeCloseTo(1234.568, 6);
    expect(name!.value).toBe('ABCDE');
  });

  it('decodes an ODIM polar volume and restores byte 255 inside the zlib stream', () => {
    const rays = 36;
    const bins = 40;
    // Noise-like data makes 0xFF bytes in the compressed stream all but certain.
    let seed = 7;
    const data = new Float64Array(rays * bins).map(() => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % 5 === 0 ? Number.NaN : (seed % 700) / 10 - 10;
    });
    const msg = encodeRadarVolume({
      radar: 'TEST',
      time: TIME,
      quantity: 'DBZH',
      latitudeDeg: -34.5,
      longitudeDeg: -58.5,
      heightM: 30,
      sweeps: [
        { elevationDeg: 0.5, rays, bins, rangeStepM: 500, rangeStartM: 100, data },
        { elevationDeg: 1.5, rays, bins, data },
      ],
    });
    const m = only(msg);
    const vol = m.radar!;
    expect(vol.station).toBe('TEST');
    expect(vol.latitudeDeg).toBeCloseTo(-34.5, 5);
    expect(vol.sweeps.length).toBe(2);
    const s = vol.sweeps[0]!;
    expect([s.rays, s.bins, s.rangeStepM, s.rangeStartM, s.quantity]).toEqual([rays, bins, 500, 100, 'DBZH']);
    expect(s.elevationDeg).toBeCloseTo(0.5, 6);
    expect([...s.compressed].some((b) => b === 255)).toBe(true);
    for (let i = 0; i < data.length; i++) {
      if (Number.isNaN(data[i]!)) expect(s.data[i]).toBe(s.nodata);
      else expect(s.data[i]).toBe(data[i]);
    }
    expect(vol.sweeps[1]!.elevationDeg).toBeCloseTo(1.5, 6);
  });

  it('2-21 marks data not present; 0-31-011 sends the data once for all repetitions; 2-06 reads unknown local data', () => {
    const bytes = encodeMessage({
      centre: 98,
      category: 0,
      masterVersion: 33,
      time: TIME,
      descriptors: [221002, 1001, 1002, 12101, 101000, 31011, 12103, 206012, 12250, 1002],
      subsets: [[280.15, 3, 275.5, 1234, 384]],
    });
    const flat = only(bytes).subsets[0]!;
    expect(flat.map((e) => [e.descriptor, e.value])).toEqual([
      ['012101', 280.15],
      ['031011', 3],
      ['012103', 275.5],
      ['012103', 275.5],
      ['012103', 275.5],
      ['012250', 1234],
      ['001002', 384],
    ]);
    expect(flat[5]!.kind).toBe('skipped');
  });

  it('renders the nested form: sequences as objects, replications as arrays of repetitions', () => {
    const bytes = encodeMessage({
      edition: 2,
      centre: 98,
      category: 2,
      masterVersion: 13,
      time: TIME,
      descriptors: [301011, 102000, 31001, 7004, 12101],
      subsets: [[2026, 11, 23, 2, 85000, 280.5, 70000, null]],
    });
    const m = only(bytes);
    expect([m.header.edition, m.header.centre, m.header.typicalTime.year]).toEqual([2, 98, 2026]);
    expect(toNestedJson(m)).toEqual([
      {
        sequence: '301011',
        items: [
          { descriptor: '004001', key: 'year', value: 2026, unit: 'a' },
          { descriptor: '004002', key: 'month', value: 11, unit: 'mon' },
          { descriptor: '004003', key: 'day', value: 23, unit: 'd' },
        ],
      },
      { descriptor: '031001', key: 'delayedDescriptorReplicationFactor', value: 2, unit: 'Numeric' },
      {
        replication: '102000',
        repetitions: [
          [
            { descriptor: '007004', key: 'pressure', value: 85000, unit: 'Pa' },
            { descriptor: '012101', key: 'airTemperature', value: 280.5, unit: 'K' },
          ],
          [
            { descriptor: '007004', key: 'pressure', value: 70000, unit: 'Pa' },
            { descriptor: '012101', key: 'airTemperature', value: null, unit: 'K' },
          ],
        ],
      },
    ]);
  });

  it('reads difference statistics (2-25) and replaced values (2-32) through a reused bitmap', () => {
    const w = new BitWriter();
    w.writeBits(28015, 16); // 0-12-101 280.15 K
    w.writeBits(27515, 16); // 0-12-103 275.15 K
    w.writeBits(1, 1); // bitmap: 0-12-101 not present
    w.writeBits(0, 1); //         0-12-103 present
    w.writeBits(65536 - 150, 17); // 2-25-255: one bit wider, reference -2^16: -1.50 K
    w.writeBits(27000, 16); // 2-32-255: 270.00 K
    const bytes = assembleMessage(
      {
        centre: 98,
        category: 0,
        time: TIME,
        subsetCount: 1,
        descriptors: [12101, 12103, 225000, 236000, 101002, 31031, 225255, 232000, 237000, 232255, 235000],
      },
      w.toBytes(),
    );
    const flat = only(bytes).subsets[0]!;
    expect(flat.map((e) => [e.descriptor, e.kind, e.value])).toEqual([
      ['012101', 'element', 280.15],
      ['012103', 'element', 275.15],
      ['225000', 'operator', null],
      ['236000', 'operator', null],
      ['031031', 'element', 1],
      ['031031', 'element', 0],
      ['225255', 'difference', -1.5],
      ['232000', 'operator', null],
      ['237000', 'operator', null],
      ['232255', 'replaced', 270],
      ['235000', 'operator', null],
    ]);
    expect(flat[6]!.name).toMatch(/DEWPOINT/i);
  });

  it('names an unknown descriptor with centre, sub-centre and table versions', () => {
    const bytes = encodeMessage({
      centre: 98,
      category: 0,
      masterVersion: 33,
      time: TIME,
      descriptors: [12101],
      subsets: [[280]],
    });
    // Patch the descriptor in Section 3 to a local one no table defines: 0-12-250.
    const s3 = 8 + 22;
    expect(bytes[s3 + 7]).toBe(12);
    bytes[s3 + 8] = 250;
    const res = decodeBufr(bytes);
    const m = res.messages[0]!;
    expect(m.ok).toBe(false);
    if (!m.ok) {
      expect(m.error.code).toBe('BUFR_UNKNOWN_DESCRIPTOR');
      expect(m.error.message).toMatch(/0-12-250/);
      expect(m.error.message).toMatch(/centre 98, sub-centre 0, master table version 33, local table version 0/);
    }
  });
});
