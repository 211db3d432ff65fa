import { describe, expect, it } from 'vitest';
import {
  type DecodedMessage,
  decodeBufr,
  eachSubset,
  subsetCount,
  valueAt,
  valueCount,
} from '../../plugins/bufr/decoder/index.js';
import { encodeRadarVolume } from '../../plugins/bufr/encoder/radar.js';
import { encodeSatelliteSwath } from '../../plugins/bufr/encoder/satellite.js';
import { encodeSynop } from '../../plugins/bufr/encoder/synop.js';
import { dumpLines, jsonChunks, toJsonDocument } from '../../plugins/bufr/output/document.js';

const TIME = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));

function only(bytes: Uint8Array): DecodedMessage {
  const m = decodeBufr(bytes).messages[0]!;
  if (!m.ok) throw m.error;
  return m;
}

const obs = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    block: 10,
    station: 100 + i,
    name: i % 3 === 0 ? undefined : `ST ${i}`,
    latitudeDeg: 50 + i / 100,
    longitudeDeg: 10,
    heightM: i % 4 === 0 ? null : i,
    time: TIME,
    airTemperatureK: 270 + i / 10,
    pressurePa: 100000,
  }));

describe('bufr large compressed messages', () => {
  it('stores compressed columns once when constant and as Float64Array (NaN = missing) when they vary', () => {
    const m = only(encodeSatelliteSwath({ subsets: 3000, channels: 5, missingShare: 0.1, seed: 3 }));
    expect(m.header.numberOfSubsets).toBe(3000);
    const items = m.items[0]!;
    const byKey = (key: string) => items.filter((it) => it.def.key === key);
    // Satellite identifier, channel numbers: the same in every subset, one value stored.
    expect(byKey('satelliteIdentifier')[0]!.vals).toEqual([206]);
    expect(byKey('channelNumber').map((it) => it.vals)).toEqual([[1], [2], [3], [4], [5]]);
    const bt = byKey('brightnessTemperature')[0]!.vals;
    expect(bt).toBeInstanceOf(Float64Array);
    expect(bt.length).toBe(3000);
    const values = Array.from({ length: 3000 }, (_, s) => valueAt(bt, s));
    const missing = values.filter((v) => v === null).length;
    expect(missing).toBeGreaterThan(150);
    expect(missing).toBeLessThan(450);
    for (const v of values) if (v !== null) expect(v).toBeGreaterThanOrEqual(200);
    // Field of view runs 1..56 along each scan line.
    const fov = byKey('fieldOfViewNumber')[0]!.vals;
    expect([valueAt(fov, 0), valueAt(fov, 55), valueAt(fov, 56)]).toEqual([1, 56, 1]);
    expect(valueCount(m)).toBe(items.length * 3000);
  });

  it('walks subsets one at a time with the same entries as msg.subsets', () => {
    for (const bytes of [encodeSynop(obs(7), { compressed: true }), encodeSynop(obs(5), { compressed: false })]) {
      const m = only(bytes);
      const walked = [...eachSubset(m)];
      expect(walked.length).toBe(subsetCount(m));
      expect(walked).toEqual(m.subsets);
    }
  });

  it('streams the JSON document in pieces equal to JSON.stringify of it', () => {
    const radar = encodeRadarVolume({
      radar: 'DEMO',
      time: TIME,
      quantity: 'DBZH',
      sweeps: [{ elevationDeg: 0.5, rays: 8, bins: 4, data: new Float64Array(32).fill(3) }],
    });
    const samples = [
      encodeSynop(obs(9), { compressed: true }),
      encodeSynop(obs(4), { compressed: false }),
      encodeSatelliteSwath({ subsets: 300, channels: 3 }),
      radar,
      new Uint8Array([1, 2, 3]),
    ];
    for (const [i, bytes] of samples.entries()) {
      for (const nested of [false, true]) {
        const doc = toJsonDocument(decodeBufr(bytes), `f${i}`, { nested });
        const pieces = [...jsonChunks(doc)];
        expect(pieces.join(''), `sample ${i} nested ${nested}`).toBe(JSON.stringify(doc));
        if (i === 2) {
          // One piece per subset or element, none holding the document.
          expect(pieces.length).toBeGreaterThan(nested ? 300 : 30);
          expect(Math.max(...pieces.map((p) => p.length))).toBeLessThan(JSON.stringify(doc).length / 5);
        }
      }
    }
  });

  it('streams the JSON and the dump of a compressed message without building every subset list', () => {
    const res = decodeBufr(encodeSatelliteSwath({ subsets: 2000, channels: 4 }));
    const m = res.messages[0]!;
    // msg.subsets keeps all lists at once: the streaming paths must never touch it.
    Object.defineProperty(m, 'subsets', {
      get: () => {
        throw new Error('msg.subsets read');
      },
    });
    let chars = 0;
    for (const c of jsonChunks(toJsonDocument(res, 'swath', { nested: true }))) chars += c.length;
    expect(chars).toBeGreaterThan(1_000_000);
    let lines = 0;
    for (const _ of dumpLines(res)) lines++;
    expect(lines).toBeGreaterThan(2000 * 13);
  });

  it('dumps a many-subset message line by line', () => {
    const m = decodeBufr(encodeSatelliteSwath({ subsets: 200, channels: 2, missingShare: 0 }));
    const lines = [...dumpLines(m)];
    expect(lines.filter((l) => l.startsWith('  subset ')).length).toBe(200);
    expect(lines.find((l) => l.includes('brightnessTemperature'))).toMatch(/012163 brightnessTemperature = [\d.]+ K/);
  });

  it('fails fast, before allocating, when a compressed column claims more bits than the message has', () => {
    const bytes = encodeSatelliteSwath({ subsets: 50, channels: 1 });
    // Claim 60,000 subsets in Section 3 (edition 4: sections 0 and 1 take 8 + 22 bytes).
    const copy = bytes.slice();
    const s3 = 8 + 22;
    copy[s3 + 4] = (60000 >> 8) & 0xff;
    copy[s3 + 5] = 60000 & 0xff;
    const m = decodeBufr(copy).messages[0]!;
    expect(m.ok).toBe(false);
    if (!m.ok) expect(m.error.code).toBe('BUFR_TRUNCATED');
  });
});
