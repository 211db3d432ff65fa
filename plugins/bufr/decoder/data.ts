/**
 * Section 4 decoding: walks the descriptors of Section 3 (expanding Table D sequences and
 * replications as it goes) and reads values, uncompressed (one subset at a time) or compressed
 * (all subsets at once). Every loop is bounded by the bits left, a step budget and a value budget,
 * so corrupt input fails fast instead of hanging or exhausting memory.
 */
import type { BitReader } from './bit-reader.js';
import { BufrError } from './errors.js';
import type { ElementDef, TableLookup } from './tables.js';

/** A decoded value: number (scaled), string, or null for missing. */
export type Val = number | string | null;

/**
 * The values of one item: a single value shared by every subset (always so when uncompressed,
 * and for a compressed column that does not vary), one value per subset, or, for a compressed
 * numeric column that varies, a Float64Array with NaN for missing (8 bytes a value, no objects).
 */
export type Column = Val[] | Float64Array;

/** Value of `vals` for subset `s` (0-based), null when missing. */
export function valueAt(vals: Column, s: number): Val {
  const v = vals.length === 1 ? vals[0] : vals[s];
  return v === undefined || (typeof v === 'number' && Number.isNaN(v)) ? null : v;
}

/** What an item in the element list is. */
export type ItemKind =
  | 'element'
  | 'associated'
  | 'operator'
  | 'text'
  | 'substituted'
  | 'firstOrder'
  | 'difference'
  | 'replaced'
  | 'bytes'
  | 'skipped';

/** Effective definition of a value (Table B after operators 2-01/2-02/2-03/2-07/2-08). */
export interface ItemDef {
  readonly key: string;
  readonly name: string;
  readonly unit: string;
  readonly scale: number;
  readonly reference: number;
  readonly width: number;
  readonly isString: boolean;
}

/** One entry of a message's element list (the same list ecCodes numbers with `index`). */
export interface Item {
  code: number;
  kind: ItemKind;
  def: ItemDef;
  /** Values, see {@link Column}: read them with {@link valueAt}. */
  vals: Column;
  /** For `bytes`: a run of 8-bit elements copied straight out of the data. */
  bytes?: Uint8Array;
}

/** Tree node for the nested output: an item, a sequence, or a replication. */
export type Node = number | { seq: number; children: Node[] } | { rep: number; reps: Node[][] };

/** Bounds for one message. */
export interface DecodeLimits {
  /** Descriptor steps (including zero-width ones), shared by all subsets of a message. */
  maxSteps: number;
  /** Steps used so far; shared so that many subsets cannot multiply the budget. */
  used: { steps: number };
  /** Values stored (items times subsets). */
  maxValues: number;
}

const MAX_DEPTH = 64;
const OPERATOR_ITEMS = new Set([22, 23, 24, 25, 26, 27, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42]);
const BITMAP_OPS = new Set([222000, 223000, 236000]);

function fxy(code: number): string {
  return `${Math.floor(code / 100000)}-${String(Math.floor(code / 1000) % 100).padStart(2, '0')}-${String(code % 1000).padStart(3, '0')}`;
}

/**
 * Replication factors, bitmap flags and associated fields are never "missing": all ones is a value
 * there. For associated fields (2-04) this follows ecCodes, and WMO's note to 0-31-021: whether an
 * all-ones field means "missing" depends on its significance (e.g. 21 = 6 has 15 for missing,
 * 21 = 1 has 1 for "suspect or bad"), so the number is kept and the significance read with it.
 */
function canBeMissing(code: number): boolean {
  return !(
    code === 999999 ||
    code === 31000 ||
    code === 31001 ||
    code === 31002 ||
    code === 31011 ||
    code === 31012 ||
    code === 31031 ||
    code === 31032
  );
}

function isCodeOrFlag(unit: string): boolean {
  return /code\s*table|flag\s*table/i.test(unit);
}

function scaleValue(raw: number, reference: number, scale: number): number {
  const v = raw + reference;
  return scale > 0 ? v / 10 ** scale : scale < 0 ? v * 10 ** -scale : v;
}

/** C isspace(): blank, tab, newline, vertical tab, form feed, carriage return. */
function isCSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** True when every character of `s` is 0xFF (an empty `s` is not). */
function isAllOnes(s: string, end: number): boolean {
  if (end === 0) return false;
  for (let i = 0; i < end; i++) if (s.charCodeAt(i) !== 0xff) return false;
  return true;
}

/**
 * The string conventions of ecCodes (WMO for all-ones): the string ends at the first NUL, as a C
 * string does, and an empty one is missing (so NUL-filled is missing); all 0xFF up to that NUL is
 * missing, and so, when `blanksCount` is false (uncompressed data, where ecCodes looks past
 * trailing blanks), is all 0xFF followed by blanks; trailing blanks are dropped, but an all-blank
 * string keeps one blank (present, not missing); leading blanks are data and kept.
 */
export function bufrString(raw: string | null, blanksCount = false): string | null {
  if (raw === null) return null;
  const nul = raw.indexOf('\0');
  const s = nul >= 0 ? raw.slice(0, nul) : raw;
  if (s === '') return null;
  let end = s.length;
  while (end > 1 && isCSpace(s.charCodeAt(end - 1))) end--;
  if (isAllOnes(s, blanksCount ? s.length : end)) return null;
  return end === s.length ? s : s.slice(0, end);
}

const MARKER_KIND: Record<number, ItemKind> = { 23: 'substituted', 24: 'firstOrder', 25: 'difference', 32: 'replaced' };
const MARKER_NAME: Record<number, string> = {
  23: 'Substituted value',
  24: 'First-order statistical value',
  25: 'Difference statistical value',
  32: 'Replaced/retained value',
};
const MARKER_KEY: Record<number, string> = {
  23: 'substitutedValue',
  24: 'firstOrderStatisticalValue',
  25: 'differenceStatisticalValue',
  32: 'replacedRetainedValue',
};

interface Bitmap {
  bits: number[];
  /** Item positions of the elements the bits refer to. */
  covered: number[];
}

/** Decoder state for one subset (uncompressed) or all subsets (compressed). */
export class DataDecoder {
  readonly items: Item[] = [];
  readonly root: Node[] = [];
  private values = 0;
  // Operator state.
  private widthAdd = 0;
  private scaleAdd = 0;
  private refScaleY = 0;
  private stringWidthBits = 0;
  private newRefBits = 0;
  private readonly newRefs = new Map<number, number>();
  private readonly assocStack: number[] = [];
  private assocBits = 0;
  private skipWidth = -1;
  private notPresent = 0;
  // Bitmaps.
  private collecting: { endOrd: number; bits: number[] } | undefined;
  /** Item positions of the data elements, in order (the list bitmaps count back through). */
  private readonly elementIdx: number[] = [];
  /** Number of data elements before the first 2-22/2-23/2-36 operator, once one was seen. */
  private elementsBeforeFirstBitmapOp: number | undefined;
  private bitmap: Bitmap | undefined;
  private cursor = 0;

  constructor(
    private readonly r: BitReader,
    private readonly tables: TableLookup,
    /** Number of values per item: the subset count when compressed, else 1. */
    private readonly n: number,
    private readonly compressed: boolean,
    private readonly limits: DecodeLimits,
    private readonly describe: string,
  ) {}

  private fail(code: string, msg: string, descriptor?: number): never {
    throw new BufrError(code, `${this.describe}: ${msg}`, descriptor === undefined ? undefined : { descriptor });
  }

  private push(item: Item, out: Node[]): number {
    this.values += item.vals.length;
    if (this.values > this.limits.maxValues)
      this.fail('BUFR_TOO_LARGE', `more than ${this.limits.maxValues} values; the message is corrupt or too large`);
    this.items.push(item);
    const at = this.items.length - 1;
    out.push(at);
    return at;
  }

  // --- value reading -------------------------------------------------------------------------

  private readNumbers(code: number, width: number, reference: number, scale: number): Column {
    const r = this.r;
    const missingOk = canBeMissing(code) && width > 1;
    const allOnes = 2 ** width - 1;
    if (!this.compressed) {
      const raw = r.read(width);
      return [missingOk && raw === allOnes ? null : scaleValue(raw, reference, scale)];
    }
    const r0 = r.read(width);
    const nbinc = r.read(6);
    // The same for every subset: stored once.
    if (nbinc === 0) return [missingOk && r0 === allOnes ? null : scaleValue(r0, reference, scale)];
    if (nbinc > 53) this.fail('BUFR_BAD_DATA', `${fxy(code)}: increment width ${nbinc} is impossible`);
    if (r.remaining < nbinc * this.n)
      this.fail('BUFR_TRUNCATED', `${fxy(code)}: ${this.n} increments of ${nbinc} bits need more bits than are left`);
    const incOnes = 2 ** nbinc - 1;
    const out = new Float64Array(this.n);
    for (let k = 0; k < this.n; k++) {
      const inc = r.read(nbinc);
      out[k] = missingOk && inc === incOnes ? Number.NaN : scaleValue(r0 + inc, reference, scale);
    }
    return out;
  }

  private readStrings(widthBits: number): Val[] {
    const r = this.r;
    const bytes = widthBits >> 3;
    if (!this.compressed) {
      const s = r.readString(bytes);
      r.skip(widthBits & 7);
      return [bufrString(s)];
    }
    const s0 = r.readString(bytes);
    r.skip(widthBits & 7);
    const nbinc = r.read(6);
    // Compressed strings, as ecCodes dumps them: 0xFF then blanks is data, not missing.
    if (nbinc === 0) return [bufrString(s0, true)];
    if (r.remaining < nbinc * 8 * this.n)
      this.fail('BUFR_TRUNCATED', `${this.n} strings of ${nbinc} bytes need more bits than are left`);
    const out: Val[] = new Array(this.n);
    for (let k = 0; k < this.n; k++) {
      out[k] = bufrString(r.readString(nbinc), true);
    }
    return out;
  }

  private effective(def: ElementDef): ItemDef {
    if (def.isString) {
      const width = this.stringWidthBits || def.width;
      return width === def.width ? def : { ...def, width };
    }
    let { scale, reference, width } = def;
    const override = this.newRefs.get(def.code);
    if (override !== undefined) reference = override;
    if (!isCodeOrFlag(def.unit)) {
      if (this.refScaleY) {
        const y = this.refScaleY;
        scale += y;
        reference *= 10 ** y;
        width += Math.floor((10 * y + 2) / 3);
      }
      scale += this.scaleAdd;
      width += this.widthAdd;
    }
    if (scale === def.scale && reference === def.reference && width === def.width) return def;
    return { key: def.key, name: def.name, unit: def.unit, scale, reference, width, isString: false };
  }

  private readDef(code: number, def: ItemDef): Column {
    if (def.width <= 0) return [null];
    if (def.width > 53 && !def.isString)
      this.fail('BUFR_BAD_DATA', `${fxy(code)}: width ${def.width} bits is too wide for a number`);
    return def.isString ? this.readStrings(def.width) : this.readNumbers(code, def.width, def.reference, def.scale);
  }

  // --- descriptors ---------------------------------------------------------------------------

  private lookup(code: number): ElementDef {
    const def = this.tables.element(code);
    if (!def)
      this.fail(
        'BUFR_UNKNOWN_DESCRIPTOR',
        `unknown descriptor ${fxy(code)} (${this.tables.label}); pass the local tables with --tables`,
        code,
      );
    return def;
  }

  private element(code: number, out: Node[]): number {
    // 2-03-YYY definition phase: the "values" are new reference values, not data. They are YYY
    // bits each, compressed messages included: no increment width follows (as ecCodes reads them;
    // a reference value is one for the whole message, never per subset).
    if (this.newRefBits > 0) {
      const bits = this.newRefBits;
      const raw = this.r.read(bits);
      const sign = 2 ** (bits - 1);
      this.newRefs.set(code, raw >= sign ? -(raw - sign) : raw);
      return -1;
    }
    const x = Math.floor(code / 1000) % 100;
    if (this.notPresent > 0) {
      this.notPresent--;
      if (x !== 31) return -1;
    }
    if (this.skipWidth >= 0) {
      const width = this.skipWidth;
      this.skipWidth = -1;
      // 2-06-YYY: read YYY bits as an unscaled number; keep the name when the tables know it.
      const known = this.tables.element(code);
      if (!known || known.width !== width) {
        const def: ItemDef = known
          ? { key: known.key, name: known.name, unit: known.unit, scale: 0, reference: 0, width, isString: false }
          : {
              key: 'unknown',
              name: `Unknown local descriptor ${fxy(code)}`,
              unit: '',
              scale: 0,
              reference: 0,
              width,
              isString: false,
            };
        let vals: Column;
        if (width > 53) {
          this.r.skip(width);
          vals = [null];
        } else vals = this.readNumbers(code, width, 0, 0);
        return this.push({ code, kind: known ? 'element' : 'skipped', def, vals }, out);
      }
    }
    const def = this.lookup(code);
    if (this.assocBits > 0 && x !== 31) {
      const adef: ItemDef = {
        key: 'associatedField',
        name: 'Associated field',
        unit: '',
        scale: 0,
        reference: 0,
        width: this.assocBits,
        isString: false,
      };
      this.push(
        { code: 999999, kind: 'associated', def: adef, vals: this.readNumbers(999999, this.assocBits, 0, 0) },
        out,
      );
    }
    const eff = this.effective(def);
    const vals = this.readDef(code, eff);
    if (this.collecting) {
      if (code === 31031) this.collecting.bits.push(vals[0] === 0 ? 0 : 1);
      else if (!(this.collecting.bits.length === 0 && (code === 31001 || code === 31002 || code === 31000)))
        this.finishBitmap();
    }
    const at = this.push({ code, kind: 'element', def: eff, vals }, out);
    this.elementIdx.push(at);
    return at;
  }

  private startBitmap(): void {
    // Like ecCodes (after BUFRDC, ECC-243): a bitmap refers back to the data before the first
    // quality/substitution/bitmap operator of the subset, not to the previous block of bitmap data.
    const endOrd = (this.elementsBeforeFirstBitmapOp ?? this.elementIdx.length) - 1;
    if (endOrd < 0) this.fail('BUFR_BITMAP', 'a bitmap operator comes before any data element');
    this.collecting = { endOrd, bits: [] };
  }

  private finishBitmap(): void {
    const c = this.collecting;
    if (!c) return;
    this.collecting = undefined;
    const from = c.endOrd - c.bits.length + 1;
    if (from < 0)
      this.fail('BUFR_BITMAP', `bitmap of ${c.bits.length} bits refers back to only ${c.endOrd + 1} data elements`);
    this.bitmap = { bits: c.bits, covered: this.elementIdx.slice(from, c.endOrd + 1) };
    this.cursor = 0;
  }

  private marker(x: number, code: number, out: Node[]): void {
    this.finishBitmap();
    const bm = this.bitmap;
    if (!bm) this.fail('BUFR_BITMAP', `marker ${fxy(code)} without a data present bitmap`);
    let k = this.cursor;
    while (k < bm.bits.length && bm.bits[k] !== 0) k++;
    if (k >= bm.bits.length) this.fail('BUFR_BITMAP', `marker ${fxy(code)}: no more data present in the bitmap`);
    this.cursor = k + 1;
    const ref = this.items[bm.covered[k]!]!;
    let def: ItemDef = ref.def;
    if (x === 25) def = { ...def, width: def.width + 1, reference: -(2 ** def.width) };
    const vals = def.isString
      ? this.readStrings(def.width)
      : this.readNumbers(code, def.width, def.reference, def.scale);
    this.push(
      {
        code,
        kind: MARKER_KIND[x]!,
        def: { ...def, key: MARKER_KEY[x]!, name: `${MARKER_NAME[x]!} of ${ref.def.name}` },
        vals,
      },
      out,
    );
  }

  private operator(code: number, descs: readonly number[], i: number, out: Node[]): void {
    const x = Math.floor(code / 1000) % 100;
    const y = code % 1000;
    switch (x) {
      case 1:
        this.widthAdd = y === 0 ? 0 : y - 128;
        return;
      case 2:
        this.scaleAdd = y === 0 ? 0 : y - 128;
        return;
      case 3:
        if (y === 255) this.newRefBits = 0;
        else if (y === 0) {
          this.newRefBits = 0;
          this.newRefs.clear();
        } else this.newRefBits = y;
        return;
      case 4:
        if (y === 0) this.assocStack.pop();
        else this.assocStack.push(y);
        this.assocBits = this.assocStack.reduce((a, b) => a + b, 0);
        return;
      case 5: {
        const def: ItemDef = {
          key: 'text',
          name: 'Character data',
          unit: 'CCITT IA5',
          scale: 0,
          reference: 0,
          width: y * 8,
          isString: true,
        };
        this.push({ code, kind: 'text', def, vals: this.readStrings(y * 8) }, out);
        return;
      }
      case 6:
        this.skipWidth = y;
        return;
      case 7:
        this.refScaleY = y;
        return;
      case 8:
        this.stringWidthBits = y * 8;
        return;
      case 21:
        this.notPresent = y;
        return;
      default:
        break;
    }
    if (!OPERATOR_ITEMS.has(x)) this.fail('BUFR_UNKNOWN_OPERATOR', `operator ${fxy(code)} is not supported`);
    if (y === 255 && (x === 23 || x === 24 || x === 25 || x === 32)) {
      this.marker(x, code, out);
      return;
    }
    const opDef: ItemDef = {
      key: 'operator',
      name: `Operator ${fxy(code)}`,
      unit: '',
      scale: 0,
      reference: 0,
      width: 0,
      isString: false,
    };
    if (x === 22 && y !== 0) return;
    this.finishBitmap();
    this.push({ code, kind: 'operator', def: opDef, vals: [null] }, out);
    if (BITMAP_OPS.has(code) && this.elementsBeforeFirstBitmapOp === undefined)
      this.elementsBeforeFirstBitmapOp = this.elementIdx.length;
    const next = descs[i + 1];
    if (
      code === 236000 ||
      ((x === 22 || x === 23 || x === 24 || x === 25 || x === 32) && y === 0 && next !== 236000 && next !== 237000)
    ) {
      // A new bitmap follows when 0-31-031 comes next (directly or through a replication).
      if (code === 236000 || this.bitmapFollows(descs, i + 1)) this.startBitmap();
    } else if (code === 237000) {
      this.cursor = 0;
    } else if (code === 237255 || code === 235000) {
      this.bitmap = undefined;
      this.collecting = undefined;
    }
  }

  private bitmapFollows(descs: readonly number[], j: number, depth = 0): boolean {
    if (depth > 8) return false;
    for (let k = j; k < descs.length && k < j + 4; k++) {
      const d = descs[k]!;
      if (d === 31031) return true;
      if (Math.floor(d / 100000) === 1 || d === 31001 || d === 31002 || d === 31000) continue;
      if (Math.floor(d / 100000) === 3) {
        const seq = this.tables.sequence(d);
        return seq ? this.bitmapFollows(seq, 0, depth + 1) : false;
      }
      return false;
    }
    return false;
  }

  /** Walk `descs`, reading values. */
  run(descs: readonly number[], depth: number, out: Node[] = this.root): void {
    if (depth > MAX_DEPTH)
      this.fail('BUFR_TOO_DEEP', `descriptors nest more than ${MAX_DEPTH} levels (a sequence that contains itself?)`);
    for (let i = 0; i < descs.length; i++) {
      if (++this.limits.used.steps > this.limits.maxSteps)
        this.fail('BUFR_TOO_COMPLEX', `more than ${this.limits.maxSteps} descriptor steps; the message is corrupt`);
      const d = descs[i]!;
      const f = Math.floor(d / 100000);
      if (f === 0) {
        this.element(d, out);
      } else if (f === 3) {
        const seq = this.tables.sequence(d);
        if (!seq)
          this.fail(
            'BUFR_UNKNOWN_DESCRIPTOR',
            `unknown sequence ${fxy(d)} (${this.tables.label}); pass the local tables with --tables`,
            d,
          );
        const node = { seq: d, children: [] as Node[] };
        out.push(node);
        this.run(seq, depth + 1, node.children);
      } else if (f === 2) {
        this.operator(d, descs, i, out);
      } else if (f === 1) {
        i = this.replication(descs, i, depth, out);
      } else {
        this.fail('BUFR_BAD_DESCRIPTOR', `descriptor ${d} has an impossible F`);
      }
    }
  }

  private replication(descs: readonly number[], i: number, depth: number, out: Node[]): number {
    const d = descs[i]!;
    const x = Math.floor(d / 1000) % 100;
    const y = d % 1000;
    const node = { rep: d, reps: [] as Node[][] };
    let start = i + 1;
    let count = y;
    let repeatData = false;
    if (y === 0) {
      const factorCode = descs[i + 1];
      if (factorCode === undefined || Math.floor(factorCode / 1000) !== 31)
        this.fail('BUFR_BAD_DESCRIPTOR', `delayed replication ${fxy(d)} is not followed by a class 31 factor`);
      start = i + 2;
      const body = descs.slice(start, start + x);
      if (body.length !== x)
        this.fail('BUFR_BAD_DESCRIPTOR', `replication ${fxy(d)} needs ${x} descriptors, ${body.length} follow`);
      const fi = this.element(factorCode, out);
      const fv = fi >= 0 ? this.items[fi]!.vals : [0];
      const n = valueAt(fv, 0);
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
        this.fail('BUFR_BAD_DATA', `replication factor ${String(n)} is invalid`);
      if (this.compressed && fv.some((v) => v !== n))
        this.fail('BUFR_UNSUPPORTED', 'delayed replication differs between compressed subsets');
      count = n;
      repeatData = factorCode === 31011 || factorCode === 31012;
      if (this.byteRun(body, count, node, out)) return start + x - 1;
    }
    const body = descs.slice(start, start + x);
    if (body.length !== x)
      this.fail('BUFR_BAD_DESCRIPTOR', `replication ${fxy(d)} needs ${x} descriptors, ${body.length} follow`);
    out.push(node);
    if (repeatData && count > 0) {
      // 0-31-011/012: the data are sent once and stand for `count` repetitions.
      const first: Node[] = [];
      const from = this.items.length;
      this.run(body, depth + 1, first);
      node.reps.push(first);
      const to = this.items.length;
      for (let k = 1; k < count; k++) {
        const copy: Node[] = [];
        for (let j = from; j < to; j++) this.push({ ...this.items[j]! }, copy);
        node.reps.push(copy);
      }
      return start + x - 1;
    }
    for (let k = 0; k < count; k++) {
      const rep: Node[] = [];
      node.reps.push(rep);
      this.run(body, depth + 1, rep);
    }
    return start + x - 1;
  }

  /**
   * Fast path for radar byte runs: a delayed replication of one plain 8-bit element (0-30-198 in
   * ODIM-in-BUFR) is copied straight into a Uint8Array. The all-ones byte is kept as 255: in a
   * compressed array it is data, not "missing".
   */
  private byteRun(body: readonly number[], count: number, node: { rep: number; reps: Node[][] }, out: Node[]): boolean {
    if (this.compressed || body.length !== 1 || count < 16) return false;
    const code = body[0]!;
    if (
      Math.floor(code / 100000) !== 0 ||
      this.assocBits ||
      this.notPresent ||
      this.skipWidth >= 0 ||
      this.newRefBits ||
      this.collecting
    )
      return false;
    const def = this.tables.element(code);
    if (!def || def.isString || def.width !== 8 || def.scale !== 0 || def.reference !== 0) return false;
    const eff = this.effective(def);
    if (eff.width !== 8 || eff.scale !== 0 || eff.reference !== 0) return false;
    if (this.r.remaining < count * 8)
      this.fail('BUFR_TRUNCATED', `byte run of ${count} needs ${count * 8} bits, ${this.r.remaining} left`);
    const bytes = new Uint8Array(count);
    this.r.readBytesInto(bytes, 0, count);
    this.limits.used.steps += count;
    out.push(node);
    const rep: Node[] = [];
    node.reps.push(rep);
    this.push({ code, kind: 'bytes', def: eff, vals: [null], bytes }, rep);
    return true;
  }
}
