/**
 * PPI quicklook of one sweep: the polar array mapped onto a square image (north up, rays
 * clockwise from north), range rings every 50 km, and a colour scale with its values.
 */
import type { RadarSweep } from '../decoder/radar.js';
import { encodePng } from './png.js';

type Rgb = readonly [number, number, number];

/** A colour scale: stops of (value, colour), interpolated linearly, clamped at the ends. */
export interface ColourScale {
  label: string;
  stops: ReadonlyArray<readonly [number, Rgb]>;
}

const REFLECTIVITY: ColourScale = {
  label: 'DBZ',
  stops: [
    [-10, [60, 60, 80]],
    [0, [4, 233, 231]],
    [10, [3, 0, 244]],
    [15, [2, 253, 2]],
    [25, [0, 142, 0]],
    [30, [253, 248, 2]],
    [40, [253, 149, 0]],
    [45, [253, 0, 0]],
    [55, [188, 0, 0]],
    [60, [248, 0, 253]],
    [70, [255, 255, 255]],
  ],
};

function diverging(limit: number, label: string): ColourScale {
  return {
    label,
    stops: [
      [-limit, [20, 40, 160]],
      [-limit / 3, [90, 160, 230]],
      [0, [235, 235, 235]],
      [limit / 3, [240, 140, 90]],
      [limit, [170, 20, 20]],
    ],
  };
}

function sequential(min: number, max: number, label: string): ColourScale {
  const span = max > min ? max - min : 1;
  const c: Rgb[] = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ];
  return { label, stops: c.map((col, i) => [min + (span * i) / (c.length - 1), col] as const) };
}

function isValid(v: number, s: RadarSweep): boolean {
  return !Number.isNaN(v) && v !== s.nodata && v !== s.undetect && Number.isFinite(v);
}

/** The default colour scale of a sweep's quantity. */
export function colourScaleFor(s: RadarSweep): ColourScale {
  const q = s.quantity.toUpperCase();
  if (q.startsWith('DBZ') || q === 'TH' || q === 'TV') return REFLECTIVITY;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of s.data) {
    if (!isValid(v, s)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!Number.isFinite(min)) {
    min = 0;
    max = 1;
  }
  if (q === 'VRAD' || q === 'VRADH') return diverging(Math.max(Math.abs(min), Math.abs(max), 1), 'M/S');
  return sequential(min, max, q.slice(0, 4));
}

function colourAt(scale: ColourScale, v: number): Rgb {
  const st = scale.stops;
  if (v <= st[0]![0]) return st[0]![1];
  for (let i = 1; i < st.length; i++) {
    const [v1, c1] = st[i]!;
    if (v <= v1) {
      const [v0, c0] = st[i - 1]!;
      const t = (v - v0) / (v1 - v0);
      return [c0[0] + t * (c1[0] - c0[0]), c0[1] + t * (c1[1] - c0[1]), c0[2] + t * (c1[2] - c0[2])];
    }
  }
  return st[st.length - 1]![1];
}

// 3x5 pixel glyphs, one 3-bit row per entry, for the scale labels.
const GLYPHS: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 1, 1, 1],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  '-': [0, 0, 7, 0, 0],
  '.': [0, 0, 0, 0, 2],
  '/': [1, 1, 2, 4, 4],
  A: [2, 5, 7, 5, 5],
  B: [6, 5, 6, 5, 6],
  D: [6, 5, 5, 5, 6],
  H: [5, 5, 7, 5, 5],
  K: [5, 5, 6, 5, 5],
  M: [5, 7, 7, 5, 5],
  P: [7, 5, 7, 4, 4],
  R: [6, 5, 6, 5, 5],
  S: [7, 4, 7, 1, 7],
  V: [5, 5, 5, 5, 2],
  Z: [7, 1, 2, 4, 7],
  ' ': [0, 0, 0, 0, 0],
};

function drawText(rgb: Uint8Array, width: number, x0: number, y0: number, text: string, px: number, col: Rgb): void {
  let x = x0;
  for (const ch of text.toUpperCase()) {
    const g = GLYPHS[ch] ?? GLYPHS[' ']!;
    for (let row = 0; row < 5; row++)
      for (let colI = 0; colI < 3; colI++) {
        if (!((g[row]! >> (2 - colI)) & 1)) continue;
        for (let dy = 0; dy < px; dy++)
          for (let dx = 0; dx < px; dx++) {
            const xx = x + colI * px + dx;
            const yy = y0 + row * px + dy;
            const o = (yy * width + xx) * 3;
            if (xx < 0 || xx >= width || o < 0 || o + 2 >= rgb.length) continue;
            rgb[o] = col[0];
            rgb[o + 1] = col[1];
            rgb[o + 2] = col[2];
          }
      }
    x += 4 * px;
  }
}

function label(v: number): string {
  return Math.abs(v) >= 10 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1);
}

/** Options for {@link renderPpi}. */
export interface RenderOptions {
  /** Side of the square plot in pixels. @default 600 */
  sizePx?: number;
  scale?: ColourScale;
}

/** Render a sweep as a PPI quicklook PNG. */
export function renderPpi(s: RadarSweep, opts: RenderOptions = {}): Uint8Array {
  const size = Math.max(64, Math.min(4096, Math.round(opts.sizePx ?? 600)));
  const legend = 110;
  const width = size + legend;
  const height = size;
  const rgb = new Uint8Array(width * height * 3).fill(255);
  const scale = opts.scale ?? colourScaleFor(s);
  const step = Number.isFinite(s.rangeStepM) && s.rangeStepM > 0 ? s.rangeStepM : 1000;
  const start = Number.isFinite(s.rangeStartM) ? s.rangeStartM : 0;
  const maxRange = start + step * s.bins;
  const half = size / 2;
  const mPerPx = maxRange / half;
  const rays = s.rays;
  const bins = s.bins;
  const ringM = 50_000;
  const ringTol = mPerPx * 0.6;
  for (let py = 0; py < size; py++) {
    const dy = half - (py + 0.5);
    for (let px = 0; px < size; px++) {
      const dx = px + 0.5 - half;
      const r = Math.hypot(dx, dy) * mPerPx;
      if (r > maxRange) continue;
      const o = (py * width + px) * 3;
      let col: Rgb = [40, 40, 48];
      const bin = Math.floor((r - start) / step);
      if (bin >= 0 && bin < bins && rays > 0) {
        let az = (Math.atan2(dx, dy) * 180) / Math.PI;
        if (az < 0) az += 360;
        const ray = Math.min(rays - 1, Math.floor((az / 360) * rays));
        const v = s.data[ray * bins + bin];
        if (v !== undefined && isValid(v, s)) col = colourAt(scale, v);
        else if (v === s.undetect) col = [70, 70, 80];
      }
      if (Math.abs(r % ringM) < ringTol && r > ringTol) col = [150, 150, 150];
      rgb[o] = col[0];
      rgb[o + 1] = col[1];
      rgb[o + 2] = col[2];
    }
  }
  // Colour bar: top = highest value.
  const barX = size + 12;
  const barW = 24;
  const top = 30;
  const bottom = height - 20;
  const lo = scale.stops[0]![0];
  const hi = scale.stops[scale.stops.length - 1]![0];
  for (let y = top; y < bottom; y++) {
    const v = hi - ((y - top) / (bottom - top - 1)) * (hi - lo);
    const c = colourAt(scale, v);
    for (let x = barX; x < barX + barW; x++) {
      const o = (y * width + x) * 3;
      rgb[o] = c[0];
      rgb[o + 1] = c[1];
      rgb[o + 2] = c[2];
    }
  }
  const ticks = 5;
  for (let k = 0; k < ticks; k++) {
    const v = hi - (k / (ticks - 1)) * (hi - lo);
    const y = Math.round(top + (k / (ticks - 1)) * (bottom - top - 1));
    drawText(rgb, width, barX + barW + 6, Math.min(height - 11, Math.max(0, y - 5)), label(v), 2, [0, 0, 0]);
  }
  drawText(rgb, width, barX, 8, scale.label, 2, [0, 0, 0]);
  drawText(rgb, width, 8, 8, `${s.quantity} ${label(s.elevationDeg)}`, 2, [0, 0, 0]);
  return encodePng(width, height, rgb);
}
