/**
 * A BUFR encoder for the messages the project writes itself (sample files, demo data, cross-checks
 * against ecCodes): editions 3 and 4, Table B elements, Table D sequences, fixed and delayed
 * replication, operators 2-01, 2-02, 2-07 and 2-08, uncompressed or compressed subsets.
 */
import { masterTables, type TableLookup, tablesFor } from '../decoder/tables.js';
import { BitWriter } from './bit-writer.js';

/** One value in a subset, in data order. A Uint8Array stands for a delayed-replication factor plus that many 8-bit elements. */
export type EncodeValue = number | string | null | Uint8Array;

/** Section 0/1/3 content. */
export interface EncodeHeader {
  /** @default 4 */
  edition?: 2 | 3 | 4;
  centre: number;
  subCentre?: number;
  masterVersion?: number;
  localVersion?: number;
  category: number;
  subCategory?: number;
  localSubCategory?: number;
  updateSequence?: number;
  /** Typical time of the data (Section 1). */
  time: Date;
  /** Section 3 "observed data" flag. @default true */
  observed?: boolean;
}

/** What to encode. */
export interface EncodeMessageOptions extends EncodeHeader {
  /** Unexpanded descriptors (Section 3), as FXXYYY integers. */
  descriptors: readonly number[];
  /** One array of values per subset, in the order the expanded descriptors consume them. */
  subsets: readonly (readonly EncodeValue[])[];
  compressed?: boolean;
  /** Tables to encode with. Default: WMO master `masterVersion` plus the built-in OPERA radar descriptors. */
  tables?: TableLookup;
}

/** Thrown when the values do not fit the descriptors. */
export class BufrEncodeError extends Error {
  readonly code = 'BUFR_ENCODE_INVALID';
}

const MAX_DEPTH = 32;

interface OpState {
  widthAdd: number;
  scaleAdd: number;
  refScaleWidth: number; // 2-07 YYY
  stringWidthBits: number; // 2-08
  newRefBits: number; // 2-03 YYY, definition phase
  newRefs: Map<number, number>;
  assoc: number[]; // 2-04 widths, nested
  notPresent: number; // 2-21 YYY
  skipWidth: number; // 2-06 YYY, -1 when off
}

interface Effective {
  scale: number;
  reference: number;
  width: number;
  isString: boolean;
}

function effective(
  def: { code: number; scale: number; reference: number; width: number; isString: boolean; unit: string },
  op: OpState,
): Effective {
  if (def.isString) return { scale: 0, reference: 0, width: op.stringWidthBits || def.width, isString: true };
  let { scale, reference, width } = def;
  reference = op.newRefs.get(def.code) ?? reference;
  // As in the decoder: 2-01/2-02/2-07 leave code and flag tables alone.
  if (/code\s*table|flag\s*table/i.test(def.unit)) return { scale, reference, width, isString: false };
  if (op.refScaleWidth) {
    const y = op.refScaleWidth;
    scale += y;
    reference *= 10 ** y;
    width += Math.floor((10 * y + 2) / 3);
  }
  return { scale: scale + op.scaleAdd, reference, width: width + op.widthAdd, isString: false };
}

function fxy(code: number): string {
  return `${Math.floor(code / 100000)}-${String(Math.floor(code / 1000) % 100).padStart(2, '0')}-${String(code % 1000).padStart(3, '0')}`;
}

function bitsFor(n: number): number {
  let bits = 0;
  while (2 ** bits <= n) bits++;
  return bits;
}

class Walker {
  private readonly op: OpState = {
    widthAdd: 0,
    scaleAdd: 0,
    refScaleWidth: 0,
    stringWidthBits: 0,
    newRefBits: 0,
    newRefs: new Map(),
    assoc: [],
    notPresent: 0,
    skipWidth: -1,
  };
  private readonly pos: number[];

  constructor(
    private readonly w: BitWriter,
    private readonly tables: TableLookup,
    private readonly values: readonly (readonly EncodeValue[])[],
    private readonly compressed: boolean,
  ) {
    this.pos = values.map(() => 0);
  }

  private take(): EncodeValue[] {
    return this.values.map((v, i) => {
      const p = this.pos[i]!;
      if (p >= v.length) throw new BufrEncodeError(`subset ${i + 1}: ran out of values at position ${p}`);
      this.pos[i] = p + 1;
      return v[p]!;
    });
  }

  private peek(): EncodeValue | undefined {
    return this.values[0]?.[this.pos[0]!];
  }

  finish(): void {
    this.values.forEach((v, i) => {
      if (this.pos[i] !== v.length)
        throw new BufrEncodeError(`subset ${i + 1}: ${v.length - this.pos[i]!} values left over after the descriptors`);
    });
  }

  private raw(v: EncodeValue, code: number, e: { scale: number; reference: number; width: number }): number | null {
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new BufrEncodeError(`${fxy(code)}: expected a number, got ${String(v)}`);
    const r = Math.round(v * 10 ** e.scale) - e.reference;
    // All ones means "missing", except for replication factors, bitmap flags and associated
    // fields, where it is a value.
    const top = Math.floor(code / 1000) === 31 || code === 999999 ? 2 ** e.width : 2 ** e.width - 1;
    if (r < 0 || r >= top)
      throw new BufrEncodeError(
        `${fxy(code)}: value ${v} does not fit ${e.width} bits (scale ${e.scale}, reference ${e.reference})`,
      );
    return r;
  }

  private writeElement(code: number, vals: EncodeValue[]): void {
    const def = this.tables.element(code);
    if (!def) throw new BufrEncodeError(`unknown descriptor ${fxy(code)}; add it to the tables`);
    this.writeValues(code, effective(def, this.op), vals);
  }

  private writeValues(code: number, e: Effective, vals: EncodeValue[]): void {
    if (e.isString) {
      const bytes = e.width / 8;
      const strs = vals.map((v) => (v === null ? null : String(v)));
      if (!this.compressed) {
        const s = strs[0];
        if (s === null || s === undefined) this.w.writeOnes(e.width);
        else this.w.writeString(s, bytes);
        return;
      }
      if (strs.every((s) => s === strs[0])) {
        const s = strs[0];
        if (s === null || s === undefined) this.w.writeOnes(e.width);
        else this.w.writeString(s, bytes);
        this.w.writeBits(0, 6);
        return;
      }
      this.w.writeBits(0, e.width);
      this.w.writeBits(bytes, 6);
      for (const s of strs) {
        if (s === null) this.w.writeOnes(e.width);
        else this.w.writeString(s, bytes);
      }
      return;
    }
    const raws = vals.map((v) => this.raw(v, code, e));
    if (!this.compressed) {
      const r = raws[0];
      if (r === null || r === undefined) this.w.writeOnes(e.width);
      else this.w.writeBits(r, e.width);
      return;
    }
    const present = raws.filter((r): r is number => r !== null);
    if (present.length === 0) {
      this.w.writeOnes(e.width);
      this.w.writeBits(0, 6);
      return;
    }
    const min = Math.min(...present);
    const max = Math.max(...present);
    const hasMissing = present.length !== raws.length;
    if (!hasMissing && min === max) {
      this.w.writeBits(min, e.width);
      this.w.writeBits(0, 6);
      return;
    }
    // All ones in the increment means missing (for every element that can be missing), so the
    // range always needs one spare code.
    const nbinc = bitsFor(max - min + 1);
    this.w.writeBits(min, e.width);
    this.w.writeBits(nbinc, 6);
    for (const r of raws) {
      if (r === null) this.w.writeOnes(nbinc);
      else this.w.writeBits(r - min, nbinc);
    }
  }

  private element(d: number): void {
    const x = Math.floor(d / 1000) % 100;
    if (this.op.newRefBits) {
      // 2-03 definition phase: the value is the new reference, sign and magnitude.
      const bits = this.op.newRefBits;
      const vals = this.take();
      const v = vals[0];
      if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) >= 2 ** (bits - 1))
        throw new BufrEncodeError(`${fxy(d)}: new reference ${String(v)} does not fit ${bits} bits`);
      if (vals.some((o) => o !== v))
        throw new BufrEncodeError(`${fxy(d)}: new reference values differ between subsets`);
      // YYY bits, sign first, compressed or not: no increment width follows (see the decoder).
      this.w.writeBits(v < 0 ? 2 ** (bits - 1) - v : v, bits);
      this.op.newRefs.set(d, v);
      return;
    }
    if (this.op.notPresent > 0) {
      this.op.notPresent--;
      if (x !== 31) return;
    }
    if (this.op.skipWidth >= 0) {
      const width = this.op.skipWidth;
      this.op.skipWidth = -1;
      this.writeValues(d, { scale: 0, reference: 0, width, isString: false }, this.take());
      return;
    }
    const assoc = this.op.assoc.reduce((a, b) => a + b, 0);
    if (assoc > 0 && x !== 31)
      this.writeValues(999999, { scale: 0, reference: 0, width: assoc, isString: false }, this.take());
    this.writeElement(d, this.take());
  }

  walk(descs: readonly number[], depth: number): void {
    if (depth > MAX_DEPTH) throw new BufrEncodeError('descriptors nest too deeply');
    for (let i = 0; i < descs.length; i++) {
      const d = descs[i]!;
      const f = Math.floor(d / 100000);
      const x = Math.floor(d / 1000) % 100;
      const y = d % 1000;
      if (f === 0) {
        this.element(d);
      } else if (f === 1) {
        let count = y;
        let start = i + 1;
        if (y === 0) {
          const factorCode = descs[i + 1];
          if (factorCode === undefined) throw new BufrEncodeError(`${fxy(d)}: missing replication factor descriptor`);
          start = i + 2;
          const body = descs.slice(start, start + x);
          const next = this.peek();
          const def = this.tables.element(body[0] ?? 0);
          if (next instanceof Uint8Array && body.length === 1 && def && !def.isString && def.width === 8) {
            const runs = this.take() as Uint8Array[];
            const run = runs[0]!;
            if (runs.some((r) => r.length !== run.length))
              throw new BufrEncodeError(`${fxy(d)}: byte runs differ in length between subsets`);
            this.writeElement(
              factorCode,
              runs.map((r) => r.length),
            );
            for (let k = 0; k < run.length; k++) {
              // A run is written as plain 8-bit values, byte 255 included (readers restore it).
              if (this.compressed) {
                const col = runs.map((r) => r[k]!);
                this.writeElement(body[0]!, col);
              } else this.w.writeBits(run[k]!, 8);
            }
            i = start + x - 1;
            continue;
          }
          const factors = this.take();
          const n = factors[0];
          if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
            throw new BufrEncodeError(`${fxy(d)}: replication factor must be a non-negative integer, got ${String(n)}`);
          if (factors.some((v) => v !== n))
            throw new BufrEncodeError(`${fxy(d)}: compressed subsets need equal replication factors`);
          this.writeElement(factorCode, factors);
          count = n;
          // 0-31-011/012: the data follow once and stand for all repetitions.
          if ((factorCode === 31011 || factorCode === 31012) && n > 0) count = 1;
        }
        const body = descs.slice(start, start + x);
        if (body.length !== x) throw new BufrEncodeError(`${fxy(d)}: fewer than ${x} descriptors follow`);
        for (let k = 0; k < count; k++) this.walk(body, depth + 1);
        i = start + x - 1;
      } else if (f === 2) {
        if (x === 1) this.op.widthAdd = y === 0 ? 0 : y - 128;
        else if (x === 2) this.op.scaleAdd = y === 0 ? 0 : y - 128;
        else if (x === 3) {
          if (y === 0) this.op.newRefs.clear();
          this.op.newRefBits = y === 0 || y === 255 ? 0 : y;
        } else if (x === 4) {
          if (y === 0) this.op.assoc.pop();
          else this.op.assoc.push(y);
        } else if (x === 5) this.writeValues(d, { scale: 0, reference: 0, width: y * 8, isString: true }, this.take());
        else if (x === 6) this.op.skipWidth = y;
        else if (x === 7) this.op.refScaleWidth = y;
        else if (x === 8) this.op.stringWidthBits = y * 8;
        else if (x === 21) this.op.notPresent = y;
        else if ([22, 23, 24, 25, 32, 35, 36, 37].includes(x) && !(y === 255 && [23, 24, 25, 32].includes(x))) {
          // Quality and bitmap operators carry no data of their own; the bitmap is plain 0-31-031 values.
        } else throw new BufrEncodeError(`operator ${fxy(d)} is not supported by the encoder`);
      } else {
        const seq = this.tables.sequence(d);
        if (!seq) throw new BufrEncodeError(`unknown sequence ${fxy(d)}; add it to the tables`);
        this.walk(seq, depth + 1);
      }
    }
  }
}

function u24(n: number): number[] {
  return [(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** Encode one BUFR message. */
export function encodeMessage(opts: EncodeMessageOptions): Uint8Array {
  const edition = opts.edition ?? 4;
  const masterVersion = opts.masterVersion ?? 33;
  const subCentre = opts.subCentre ?? 0;
  const localVersion = opts.localVersion ?? 0;
  const tables =
    opts.tables ??
    tablesFor({
      masterVersion: masterTables(masterVersion).version,
      centre: opts.centre,
      subCentre,
      localVersion,
      opera: true,
    });
  if (opts.subsets.length === 0 || opts.subsets.length > 65535) throw new BufrEncodeError('need 1 to 65535 subsets');
  const compressed = opts.compressed ?? false;

  const data = new BitWriter();
  if (compressed) {
    const w = new Walker(data, tables, opts.subsets, true);
    w.walk(opts.descriptors, 0);
    w.finish();
  } else {
    for (const subset of opts.subsets) {
      const w = new Walker(data, tables, [subset], false);
      w.walk(opts.descriptors, 0);
      w.finish();
    }
  }
  return assembleMessage(
    { ...opts, edition, masterVersion, subCentre, localVersion, compressed, subsetCount: opts.subsets.length },
    data.toBytes(),
  );
}

/**
 * Wrap an already encoded data section (Section 4 payload) into a complete message: Sections 0,
 * 1, 3, 4 and 5. For tests that need bit patterns the value encoder does not produce.
 */
export function assembleMessage(
  opts: EncodeHeader & { descriptors: readonly number[]; subsetCount: number; compressed?: boolean },
  payload: Uint8Array,
): Uint8Array {
  const edition = opts.edition ?? 4;
  const masterVersion = opts.masterVersion ?? 33;
  const subCentre = opts.subCentre ?? 0;
  const localVersion = opts.localVersion ?? 0;
  const compressed = opts.compressed ?? false;
  const t = opts.time;
  let s1: number[];
  if (edition === 4) {
    s1 = [
      ...u24(22),
      0,
      (opts.centre >> 8) & 0xff,
      opts.centre & 0xff,
      (subCentre >> 8) & 0xff,
      subCentre & 0xff,
      opts.updateSequence ?? 0,
      0,
      opts.category,
      opts.subCategory ?? 255,
      opts.localSubCategory ?? 255,
      masterVersion,
      localVersion,
      (t.getUTCFullYear() >> 8) & 0xff,
      t.getUTCFullYear() & 0xff,
      t.getUTCMonth() + 1,
      t.getUTCDate(),
      t.getUTCHours(),
      t.getUTCMinutes(),
      t.getUTCSeconds(),
    ];
  } else {
    s1 = [
      ...u24(18),
      0,
      // Edition 2 has a 16-bit centre and no sub-centre; edition 3 one octet each.
      ...(edition === 2 ? [(opts.centre >> 8) & 0xff, opts.centre & 0xff] : [subCentre & 0xff, opts.centre & 0xff]),
      opts.updateSequence ?? 0,
      0,
      opts.category,
      opts.localSubCategory ?? 0,
      masterVersion,
      localVersion,
      ((t.getUTCFullYear() - 1) % 100) + 1,
      t.getUTCMonth() + 1,
      t.getUTCDate(),
      t.getUTCHours(),
      t.getUTCMinutes(),
      0,
    ];
  }
  const s3body: number[] = [0, (opts.subsetCount >> 8) & 0xff, opts.subsetCount & 0xff];
  s3body.push(((opts.observed ?? true) ? 0x80 : 0) | (compressed ? 0x40 : 0));
  for (const d of opts.descriptors) {
    const f = Math.floor(d / 100000);
    const x = Math.floor(d / 1000) % 100;
    s3body.push((f << 6) | x, d % 1000);
  }
  let s3len = 3 + s3body.length;
  if (edition < 4 && s3len % 2) s3len++;
  const s3 = [...u24(s3len), ...s3body];
  while (s3.length < s3len) s3.push(0);

  let s4len = 4 + payload.length;
  if (edition < 4 && s4len % 2) s4len++;
  const total = 8 + s1.length + s3.length + s4len + 4;
  const out = new Uint8Array(total);
  out.set([0x42, 0x55, 0x46, 0x52, ...u24(total), edition], 0);
  let p = 8;
  out.set(s1, p);
  p += s1.length;
  out.set(s3, p);
  p += s3.length;
  out.set([...u24(s4len), 0], p);
  out.set(payload, p + 4);
  p += s4len;
  out.set([0x37, 0x37, 0x37, 0x37], p);
  return out;
}
