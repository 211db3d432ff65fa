import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { RadarSweep } from '../../plugins/bufr/decoder/radar.js';
import { toNpy } from '../../plugins/bufr/output/npy.js';
import { encodePng } from '../../plugins/bufr/render/png.js';
import { colourScaleFor, renderPpi } from '../../plugins/bufr/render/ppi.js';

function chunks(png: Uint8Array): Array<{ type: string; data: Buffer }> {
  const b = Buffer.from(png);
  expect([...b.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const out: Array<{ type: string; data: Buffer }> = [];
  for (let p = 8; p < b.length; ) {
    const len = b.readUInt32BE(p);
    out.push({ type: b.subarray(p + 4, p + 8).toString('latin1'), data: b.subarray(p + 8, p + 8 + len) });
    p += 12 + len;
  }
  return out;
}

function sweep(quantity: string, data: Float64Array, rays: number, bins: number): RadarSweep {
  return {
    sweep: 0,
    elevationDeg: 0.5,
    rays,
    bins,
    rangeStepM: 1000,
    rangeStartM: 0,
    startAzimuthDeg: 0,
    startTime: '2026-11-23T12:00:00.000Z',
    endTime: '2026-11-23T12:00:30.000Z',
    productCode: 0,
    quantity,
    compressionMethod: 0,
    nodata: -Number.MAX_VALUE,
    undetect: Number.MAX_VALUE,
    compressedBytes: 0,
    chunkSizes: [],
    compressed: new Uint8Array(0),
    data,
  };
}

describe('bufr outputs', () => {
  it('writes a valid PNG', () => {
    const rgb = new Uint8Array(3 * 4 * 2).fill(200);
    const c = chunks(encodePng(4, 2, rgb));
    expect(c.map((x) => x.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    expect(c[0]!.data.readUInt32BE(0)).toBe(4);
    expect(c[0]!.data.readUInt32BE(4)).toBe(2);
    expect(inflateSync(c[1]!.data).length).toBe(2 * (1 + 4 * 3));
  });

  it('renders a PPI with the data where the rays point', () => {
    const rays = 4;
    const bins = 10;
    // Ray 0 (north) strong echo, ray 2 (south) weak, others no data.
    const data = new Float64Array(rays * bins).fill(-Number.MAX_VALUE);
    data.fill(60, 0, bins);
    data.fill(10, 2 * bins, 3 * bins);
    const s = sweep('DBZH', data, rays, bins);
    const png = renderPpi(s, { sizePx: 100 });
    const c = chunks(png);
    const width = c[0]!.data.readUInt32BE(0);
    const raw = inflateSync(Buffer.concat(c.filter((x) => x.type === 'IDAT').map((x) => x.data)));
    const px = (x: number, y: number) => [
      ...raw.subarray(y * (1 + width * 3) + 1 + x * 3, y * (1 + width * 3) + 4 + x * 3),
    ];
    const scale = colourScaleFor(s);
    expect(scale.label).toBe('DBZ');
    const north = px(50, 20);
    const south = px(50, 80);
    const east = px(80, 50);
    expect(north).not.toEqual(south);
    expect(east).toEqual([40, 40, 48]);
    expect(north[0]).toBeGreaterThan(200); // 60 dBZ is magenta-ish: strong red
  });

  it('writes .npy with a 64-byte aligned header', () => {
    const npy = toNpy(new Float64Array([1.5, -2, 3, 4, 5, 6]), [2, 3]);
    const b = Buffer.from(npy);
    const hlen = b.readUInt16LE(8);
    expect((10 + hlen) % 64).toBe(0);
    expect(b.subarray(10, 10 + hlen).toString('latin1')).toMatch(
      /^\{'descr': '<f8', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/,
    );
    expect(b.readDoubleLE(10 + hlen)).toBe(1.5);
    expect(() => toNpy(new Float64Array(5), [2, 3])).toThrow(/shape/);
  });
});
