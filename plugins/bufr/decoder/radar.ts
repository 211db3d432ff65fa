/**
 * ODIM-in-BUFR polar volumes (OPERA BUFR software, BALTRAD, SMN/INVAP): sequence 3-21-203 holds the
 * sweeps; each quantity is a zlib-compressed array of float64 sent as runs of 0-30-198 bytes
 * (3-21-206). The runs arrive as Uint8Array from the decoder's byte-run path and are inflated here.
 */
import { inflateSync } from 'node:zlib';
import type { Item, Node } from './data.js';
import { BufrError } from './errors.js';

/** One sweep (one quantity of one elevation). */
export interface RadarSweep {
  /** 0-based position of the elevation in the volume. */
  sweep: number;
  elevationDeg: number;
  rays: number;
  bins: number;
  rangeStepM: number;
  rangeStartM: number;
  /** Azimuth of the first ray. */
  startAzimuthDeg: number;
  startTime: string;
  endTime: string;
  /** 0-30-196 product code of the quantity and its ODIM name (`DBZH`, `VRAD`, ...). */
  productCode: number;
  quantity: string;
  compressionMethod: number;
  /** Value marking "no data" in `data` (-DBL_MAX for OPERA-style writers). */
  nodata: number;
  /** Value marking "undetected" (+DBL_MAX for OPERA-style writers). */
  undetect: number;
  compressedBytes: number;
  /** Lengths of the 0-30-198 runs the compressed array arrived in. */
  chunkSizes: number[];
  /** The zlib stream as sent (runs concatenated, byte 255 restored). */
  compressed: Uint8Array;
  /** rays * bins values, ray after ray; null when `inflate: false`. */
  data: Float64Array;
}

/** A polar volume. */
export interface RadarVolume {
  stationType: string | null;
  station: string | null;
  latitudeDeg: number | null;
  longitudeDeg: number | null;
  heightM: number | null;
  time: string | null;
  sweeps: RadarSweep[];
}

/** 0-30-196 codes of ODIM quantities (OPERA local code table). */
export const PRODUCT_QUANTITY: Readonly<Record<number, string>> = { 0: 'DBZH', 40: 'VRAD', 240: 'KDP', 90: 'SCAN' };

const ODIM_NODATA = -Number.MAX_VALUE;
const ODIM_UNDETECT = Number.MAX_VALUE;

function num(v: unknown): number | null {
  return typeof v === 'number' ? v : null;
}

function iso(p: Array<number | null>): string {
  const [y, mo, d, h, mi, s] = p.map((x) => x ?? 0);
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!)).toISOString();
}

function flatten(nodes: readonly Node[], out: number[]): void {
  for (const n of nodes) {
    if (typeof n === 'number') out.push(n);
    else if ('seq' in n) flatten(n.children, out);
    else for (const r of n.reps) flatten(r, out);
  }
}

function findSeq(nodes: readonly Node[], code: number): { seq: number; children: Node[] } | undefined {
  for (const n of nodes) {
    if (typeof n === 'number') continue;
    if ('seq' in n) {
      if (n.seq === code) return n;
      const f = findSeq(n.children, code);
      if (f) return f;
    } else {
      for (const r of n.reps) {
        const f = findSeq(r, code);
        if (f) return f;
      }
    }
  }
  return undefined;
}

/** Extract the polar volume from a decoded message, or undefined when it holds none. */
export function extractRadarVolume(
  msg: { items: Item[][]; tree: Node[][]; header: { compressed: boolean } },
  describe: string,
  inflate = true,
): RadarVolume | undefined {
  if (msg.header.compressed) return undefined;
  const items = msg.items[0]!;
  const tree = msg.tree[0]!;
  const volSeq = findSeq(tree, 321203);
  if (!volSeq) return undefined;
  const val = (i: number | undefined) => (i === undefined ? undefined : items[i]?.vals[0]);
  const all: number[] = [];
  flatten(tree, all);
  const first = (code: number) => val(all.find((i) => items[i]!.code === code));
  const ids = all.filter((i) => items[i]!.code === 1193);
  const types = all.filter((i) => items[i]!.code === 1192);
  const vol: RadarVolume = {
    stationType: (val(types[0]) as string | null | undefined) ?? null,
    station: (val(ids[0]) as string | null | undefined) ?? null,
    latitudeDeg: num(first(5001) ?? first(5002)),
    longitudeDeg: num(first(6001) ?? first(6002)),
    heightM: num(first(7001) ?? first(7030)),
    time: null,
    sweeps: [],
  };
  const y = num(first(4001));
  if (y !== null) vol.time = iso([y, num(first(4002)), num(first(4003)), num(first(4004)), num(first(4005)), 0]);
  // The sweeps are the repetitions of the replication that follows the factor in 3-21-203.
  const rep = volSeq.children.find((n): n is { rep: number; reps: Node[][] } => typeof n !== 'number' && 'rep' in n);
  if (!rep) return vol;
  rep.reps.forEach((sweepNodes, sweep) => {
    const list: number[] = [];
    flatten(sweepNodes, list);
    let p = 0;
    const next = (code: number): Item => {
      while (p < list.length && items[list[p]!]!.code !== code) p++;
      const it = items[list[p]!];
      if (!it) throw new BufrError('BUFR_RADAR_LAYOUT', `${describe}: sweep ${sweep}: expected ${code} in 3-21-203`);
      p++;
      return it;
    };
    const times: Array<number | null> = [];
    for (let k = 0; k < 12 && p < list.length; k++) times.push(num(items[list[p++]!]!.vals[0]));
    next(30196);
    const elevationDeg = num(next(2135).vals[0]) ?? Number.NaN;
    const bins = num(next(30194).vals[0]) ?? 0;
    const rangeStepM = num(next(21201).vals[0]) ?? Number.NaN;
    const rangeStartM = num(next(21203).vals[0]) ?? 0;
    const rays = num(next(30195).vals[0]) ?? 0;
    const startAzimuthDeg = num(next(2134).vals[0]) ?? 0;
    const nq = num(next(31001).vals[0]) ?? 0;
    for (let q = 0; q < nq; q++) {
      const productCode = num(next(30196).vals[0]) ?? -1;
      const compressionMethod = num(next(30197).vals[0]) ?? 0;
      const nchunks = num(next(31002).vals[0]) ?? 0;
      const chunks: Uint8Array[] = [];
      for (let c = 0; c < nchunks; c++) {
        const count = num(next(31002).vals[0]) ?? 0;
        if (count === 0) continue;
        const run = next(30198);
        if (run.bytes) {
          chunks.push(run.bytes);
          continue;
        }
        // Short runs arrive as single elements; all ones there means byte 255, not "missing".
        const bytes = new Uint8Array(count);
        bytes[0] = num(run.vals[0]) ?? 255;
        for (let k = 1; k < count; k++) bytes[k] = num(next(30198).vals[0]) ?? 255;
        chunks.push(bytes);
      }
      const total = chunks.reduce((a, c) => a + c.length, 0);
      const z = new Uint8Array(total);
      let at = 0;
      for (const c of chunks) {
        z.set(c, at);
        at += c.length;
      }
      let data = new Float64Array(0);
      if (inflate && total > 0) {
        const expected = rays * bins * 8;
        let raw: Buffer;
        try {
          // The bound stops a corrupt or hostile stream from inflating without limit.
          // One output chunk of the expected size: zlib then hands back its buffer instead of
          // concatenating a hundred 16 KiB pieces.
          const bound = Math.max(expected, 8) + 1024;
          raw = inflateSync(z, { maxOutputLength: bound, chunkSize: Math.max(bound, 64) });
        } catch (err) {
          throw new BufrError(
            'BUFR_RADAR_INFLATE',
            `${describe}: sweep ${sweep}: zlib inflate failed: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
        if (raw.length % 8 !== 0)
          throw new BufrError(
            'BUFR_RADAR_INFLATE',
            `${describe}: sweep ${sweep}: inflated ${raw.length} bytes, not a float64 array`,
          );
        // zlib's one output chunk starts its own memory (8-aligned): view it; copy only when not.
        if (raw.byteOffset % 8 === 0) {
          data = new Float64Array(raw.buffer as ArrayBuffer, raw.byteOffset, raw.length / 8);
        } else {
          const aligned = new Uint8Array(raw.length);
          aligned.set(raw);
          data = new Float64Array(aligned.buffer, 0, raw.length / 8);
        }
      }
      vol.sweeps.push({
        sweep,
        elevationDeg,
        rays,
        bins,
        rangeStepM,
        rangeStartM,
        startAzimuthDeg,
        startTime: iso(times.slice(0, 6)),
        endTime: iso(times.slice(6, 12)),
        productCode,
        quantity: PRODUCT_QUANTITY[productCode] ?? `product_${productCode}`,
        compressionMethod,
        nodata: ODIM_NODATA,
        undetect: ODIM_UNDETECT,
        compressedBytes: total,
        chunkSizes: chunks.map((c) => c.length),
        compressed: z,
        data,
      });
    }
  });
  return vol;
}
