/**
 * ODIM-in-BUFR polar volumes as the OPERA BUFR software writes them (and BALTRAD, SMN/INVAP):
 * edition 4, data category 6, descriptors 3-21-204 (station identifiers), 3-01-031 (station),
 * 3-21-203 (sweeps, each carrying zlib-compressed float64 arrays as runs of 0-30-198 bytes).
 */
import { deflateSync } from 'node:zlib';
import { type EncodeValue, encodeMessage } from './message.js';

/** The no-data value OPERA-style writers put in the float64 arrays (-DBL_MAX). */
export const ODIM_NODATA = -Number.MAX_VALUE;

/** 0-30-196 "type of product" codes of the quantities (OPERA local code table). */
export const QUANTITY_CODES: Readonly<Record<string, number>> = { DBZH: 0, VRAD: 40, KDP: 240 };
/** 0-30-196 code of a whole polar sweep. */
export const POLAR_SWEEP_PRODUCT = 90;

/** One sweep to encode. */
export interface RadarSweepInput {
  elevationDeg: number;
  rays: number;
  bins: number;
  /** @default 0 */
  rangeStartM?: number;
  /** @default 1000 */
  rangeStepM?: number;
  /** rays * bins values, ray after ray; NaN becomes the no-data value. */
  data: Float64Array;
  /** @default the volume time plus 30 s per sweep */
  startTime?: Date;
  endTime?: Date;
}

/** A polar volume to encode. */
export interface RadarVolumeInput {
  /** Station identifier (0-01-193), up to 16 characters. */
  radar: string;
  time: Date;
  /** ODIM quantity: DBZH, VRAD or KDP (or any name when `productCode` is given). */
  quantity: string;
  productCode?: number;
  latitudeDeg?: number;
  longitudeDeg?: number;
  heightM?: number;
  /** @default 247 (OPERA) */
  centre?: number;
  sweeps: RadarSweepInput[];
}

// 0-31-002 holds up to 65534 (all ones would read as 65535); keep runs well inside it.
const MAX_RUN_BYTES = 65000;

function dateParts(d: Date, seconds: boolean): number[] {
  const p = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes()];
  if (seconds) p.push(d.getUTCSeconds());
  return p;
}

/** Encode a polar volume as one ODIM-in-BUFR message. */
export function encodeRadarVolume(opts: RadarVolumeInput): Uint8Array {
  const code = opts.productCode ?? QUANTITY_CODES[opts.quantity.toUpperCase()];
  if (code === undefined)
    throw new Error(`bufr: unknown quantity "${opts.quantity}"; use DBZH, VRAD, KDP or pass productCode`);
  const v: EncodeValue[] = [];
  // 3-21-204: one (type, identifier) pair.
  v.push(1, 'NOD', opts.radar.slice(0, 16));
  // 3-01-031: block/station numbers unknown for a non-WMO radar, type 0 (automatic).
  v.push(null, null, 0, ...dateParts(opts.time, false));
  v.push(opts.latitudeDeg ?? 0, opts.longitudeDeg ?? 0, opts.heightM ?? 0);
  // 3-21-203: sweeps.
  v.push(opts.sweeps.length);
  opts.sweeps.forEach((s, i) => {
    if (s.data.length !== s.rays * s.bins)
      throw new Error(`bufr: sweep ${i}: data has ${s.data.length} values, expected rays*bins = ${s.rays * s.bins}`);
    const start = s.startTime ?? new Date(opts.time.getTime() + i * 30_000);
    const end = s.endTime ?? new Date(start.getTime() + 29_000);
    v.push(...dateParts(start, true), ...dateParts(end, true));
    v.push(POLAR_SWEEP_PRODUCT, s.elevationDeg, s.bins, s.rangeStepM ?? 1000, s.rangeStartM ?? 0, s.rays, 0);
    v.push(1, code, 0);
    const le = new Float64Array(s.data.length);
    for (let k = 0; k < s.data.length; k++) {
      const x = s.data[k]!;
      le[k] = Number.isNaN(x) ? ODIM_NODATA : x;
    }
    const bytes = new Uint8Array(le.buffer);
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1)
      throw new Error('bufr: big-endian hosts are not supported');
    const z = deflateSync(bytes, { level: 6 });
    const runs: Uint8Array[] = [];
    for (let p = 0; p < z.length; p += MAX_RUN_BYTES) runs.push(z.subarray(p, p + MAX_RUN_BYTES));
    v.push(runs.length, ...runs);
  });
  return encodeMessage({
    edition: 4,
    centre: opts.centre ?? 247,
    subCentre: 0,
    masterVersion: 16,
    localVersion: 2,
    category: 6,
    subCategory: 0,
    localSubCategory: 0,
    time: opts.time,
    descriptors: [321204, 301031, 321203],
    subsets: [v],
  });
}
