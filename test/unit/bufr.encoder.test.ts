import { describe, expect, it } from 'vitest';
import { encodeRadarVolume } from '../../plugins/bufr/encoder/radar.js';
import { encodeSynop } from '../../plugins/bufr/encoder/synop.js';

const TIME = new Date(Date.UTC(2026, 10, 23, 12, 5, 0));

function header(bytes: Uint8Array) {
  const len = (bytes[4]! << 16) | (bytes[5]! << 8) | bytes[6]!;
  return {
    magic: String.fromCharCode(...bytes.subarray(0, 4)),
    length: len,
    edition: bytes[7],
    centre: (bytes[12]! << 8) | bytes[13]!,
    category: bytes[18],
    end: String.fromCharCode(...bytes.subarray(bytes.length - 4)),
  };
}

describe('bufr encoder', () => {
  it('writes a well-formed edition 4 ODIM polar volume', () => {
    const data = new Float64Array(8 * 10).map((_, i) => (i % 5 === 0 ? Number.NaN : i / 2));
    const msg = encodeRadarVolume({
      radar: 'TEST1',
      time: TIME,
      quantity: 'DBZH',
      sweeps: [{ elevationDeg: 0.5, rays: 8, bins: 10, data }],
    });
    const h = header(msg);
    expect(h).toEqual({ magic: 'BUFR', length: msg.length, edition: 4, centre: 247, category: 6, end: '7777' });
  });

  it('writes a compressed observation message from master-table descriptors', () => {
    const msg = encodeSynop([
      {
        block: 10,
        station: 381,
        latitudeDeg: 52.5,
        longitudeDeg: 13.4,
        heightM: 48,
        time: TIME,
        airTemperatureK: 280.15,
        pressurePa: 101300,
      },
      {
        block: 10,
        station: 382,
        latitudeDeg: 52.6,
        longitudeDeg: 13.5,
        heightM: null,
        time: TIME,
        airTemperatureK: null,
        pressurePa: 101250,
      },
    ]);
    const h = header(msg);
    expect(h.magic).toBe('BUFR');
    expect(h.length).toBe(msg.length);
    expect(h.category).toBe(0);
    expect(h.end).toBe('7777');
  });

  it('rejects values that do not fit their element', () => {
    expect(() =>
      encodeSynop([
        {
          block: 300,
          station: 1,
          latitudeDeg: 0,
          longitudeDeg: 0,
          heightM: 0,
          time: TIME,
          airTemperatureK: 1,
          pressurePa: 1,
        },
      ]),
    ).toThrow(/001-?01|0-01-001/);
  });
});
