/**
 * Text dump, summary and JSON document of a decode result. Each can be produced piece by piece
 * (`dumpLines`, `jsonChunks`), so a message of many subsets is written out without ever being
 * held whole as text or as per-subset objects.
 */
import type { BufrEntry, DecodedMessage, DecodeResult, FailedMessage } from '../decoder/index.js';
import { eachSubset, subsetCount, toNestedJson, valueAt, valueCount } from '../decoder/index.js';
import type { RadarSweep } from '../decoder/radar.js';
import { SubsetJsonWriter } from './subset-json.js';

function fmtValue(e: BufrEntry): string {
  if (e.bytes) return `<${e.bytes.length} bytes>`;
  if (e.value === null) return 'MISSING';
  if (typeof e.value === 'string') return JSON.stringify(e.value);
  return String(e.value);
}

function time(m: DecodedMessage | FailedMessage): string {
  const t = m.header?.typicalTime;
  if (!t) return '?';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${t.year}-${p(t.month)}-${p(t.day)}T${p(t.hour)}:${p(t.minute)}:${p(t.second)}Z`;
}

function headerLine(m: DecodedMessage | FailedMessage): string {
  const h = m.header;
  if (!h) return `message ${m.number + 1} at byte ${m.offset}`;
  return (
    `message ${m.number + 1} at byte ${m.offset}: edition ${h.edition}, centre ${h.centre}/${h.subCentre}, ` +
    `category ${h.dataCategory}, master table ${h.masterTablesVersion}, local table ${h.localTablesVersion}, ` +
    `${h.numberOfSubsets} subset(s)${h.compressed ? ' compressed' : ''}, time ${time(m)}`
  );
}

/** The dump of every value, line by line (without newlines). */
export function* dumpLines(result: DecodeResult): Generator<string> {
  for (const m of result.messages) {
    yield headerLine(m);
    if (!m.ok) {
      yield `  error ${m.error.code}: ${m.error.message}`;
      continue;
    }
    yield `  descriptors ${m.header.descriptors.map((d) => String(d).padStart(6, '0')).join(' ')}`;
    if (m.partial) yield `  partial ${m.partial.code}: ${m.partial.message}`;
    let s = 0;
    for (const entries of eachSubset(m)) {
      yield `  subset ${++s}`;
      for (const e of entries) {
        if (e.kind === 'operator') {
          yield `    ${e.descriptor} ${e.name}`;
          continue;
        }
        const unit = e.unit && !/table|CCITT/i.test(e.unit) ? ` ${e.unit}` : '';
        yield `    ${e.descriptor} ${e.key} = ${fmtValue(e)}${e.value === null ? '' : unit}`;
      }
    }
  }
}

/** Line-by-line dump of every value. */
export function formatDump(result: DecodeResult, write: (line: string) => void): void {
  for (const line of dumpLines(result)) write(line);
}

function sweepLine(s: RadarSweep, i: number): string {
  const rangeKm = ((s.rangeStartM + s.rangeStepM * s.bins) / 1000).toFixed(1);
  let valid = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  const data = s.data;
  for (let k = 0; k < data.length; k++) {
    const v = data[k] as number;
    if (Number.isNaN(v) || v === s.nodata || v === s.undetect) continue;
    valid++;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const range = valid > 0 ? ` min ${min.toFixed(2)} max ${max.toFixed(2)}` : '';
  return (
    `  sweep ${i}: ${s.quantity} elevation ${s.elevationDeg} deg, ${s.rays} rays x ${s.bins} bins of ${s.rangeStepM} m ` +
    `(from ${s.rangeStartM} m, to ${rangeKm} km), ${s.startTime} - ${s.endTime}, ${valid} valid${range}`
  );
}

/** Short summary: one header line per message, radar sweeps, errors. */
export function formatSummary(result: DecodeResult, write: (line: string) => void): void {
  const ok = result.messages.filter((m) => m.ok && !m.partial).length;
  const partial = result.messages.filter((m) => m.ok && m.partial).length;
  write(
    `${result.messages.length} message(s), ${ok} decoded, ${partial > 0 ? `${partial} partly, ` : ''}` +
      `${result.messages.length - ok - partial} failed`,
  );
  for (const m of result.messages) {
    write(headerLine(m));
    if (!m.ok) {
      write(`  error ${m.error.code}: ${m.error.message}`);
      continue;
    }
    const values = valueCount(m);
    write(`  ${values} values${m.partial ? ' (partial)' : ''}; tables: ${m.tables.label}`);
    if (m.partial) write(`  partial ${m.partial.code}: ${m.partial.message}`);
    if (m.radarError) write(`  radar error ${m.radarError.code}: ${m.radarError.message}`);
    if (m.radar) {
      const r = m.radar;
      write(
        `  radar ${r.stationType ?? ''} ${r.station ?? ''} at ${r.latitudeDeg}, ${r.longitudeDeg}, ${r.heightM} m; ${r.sweeps.length} sweep(s)`,
      );
      r.sweeps.forEach((s, i) => {
        write(sweepLine(s, i));
      });
    }
  }
}

/** Options for {@link toJsonDocument}. */
export interface JsonDocumentOptions {
  /** Include the nested (tree) form of every subset. @default false */
  nested?: boolean;
  /** Name of the `.npy` file written for sweep i, recorded in the document. */
  sweepFile?: (sweep: number) => string;
}

/**
 * An array made on demand: `JSON.stringify` sees the whole array (through `toJSON`), while
 * {@link jsonChunks} walks it one element at a time.
 */
export class LazyArray<T = unknown> {
  constructor(private readonly make: () => Iterable<T>) {}
  [Symbol.iterator](): Iterator<T> {
    return this.make()[Symbol.iterator]();
  }
  toJSON(): T[] {
    return [...this.make()];
  }
}

function* mapIter<T, U>(it: Iterable<T>, f: (x: T) => U): Generator<U> {
  for (const x of it) yield f(x);
}

function* range(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

/** Column values as JSON: missing as null. */
function columnJson(vals: DecodedMessage['items'][number][number]['vals']): unknown[] {
  const out = new Array<unknown>(vals.length);
  for (let i = 0; i < vals.length; i++) out[i] = valueAt(vals, i);
  return out;
}

/** JSON text already made: {@link jsonChunks} writes it as it is, `JSON.stringify` parses it back. */
export class RawJson {
  constructor(readonly text: string) {}
  toJSON(): unknown {
    return JSON.parse(this.text);
  }
}

const SLOT = '\u0001'; // never in table text: marks where a value goes in the nested template
const SLOT_JSON = /"\\u0001(\d+)\\u0001"/g;

/**
 * The nested form of every subset of a compressed message. Its tree is the same in all subsets,
 * so it is rendered once as a template with a slot per value, then filled in per subset: no
 * objects per subset and value, which matters at tens of thousands of subsets.
 */
function* compressedNested(m: DecodedMessage): Generator<RawJson> {
  const items = m.items[0]!;
  const marked = items.map((it, k) => ({ ...it, vals: [`${SLOT}${k}${SLOT}`] }));
  // Not `{ ...m }`: that would read `m.subsets` and build every subset's list.
  const template = { header: m.header, tree: m.tree, items: [marked] } as unknown as DecodedMessage;
  const text = JSON.stringify(toNestedJson(template, 0));
  const parts: string[] = [];
  const slots: number[] = [];
  let last = 0;
  for (const hit of text.matchAll(SLOT_JSON)) {
    parts.push(text.slice(last, hit.index));
    slots.push(Number(hit[1]));
    last = hit.index + hit[0].length;
  }
  parts.push(text.slice(last));
  const n = m.header.numberOfSubsets;
  const out = new Array<string>(parts.length + slots.length);
  for (let s = 0; s < n; s++) {
    for (let k = 0; k < slots.length; k++) {
      out[2 * k] = parts[k]!;
      out[2 * k + 1] = JSON.stringify(valueAt(items[slots[k]!]!.vals, s));
    }
    out[2 * slots.length] = parts[slots.length]!;
    yield new RawJson(out.join(''));
  }
}

function hasLazyValue(value: object): boolean {
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const v of Object.values(value)) if (v instanceof LazyArray) return true;
  return false;
}

/**
 * `JSON.stringify(value)` as a series of pieces: {@link LazyArray}s are walked one element at a
 * time (and plain objects holding one, key by key); everything else is stringified in one piece.
 * The output of a huge document never exists as one string.
 */
export function* jsonChunks(value: unknown): Generator<string> {
  if (value instanceof RawJson) {
    yield value.text;
    return;
  }
  if (value instanceof LazyArray) {
    yield '[';
    let first = true;
    for (const x of value) {
      if (!first) yield ',';
      first = false;
      yield* jsonChunks(x === undefined || typeof x === 'function' ? null : x);
    }
    yield ']';
    return;
  }
  if (value !== null && typeof value === 'object' && hasLazyValue(value)) {
    yield '{';
    let first = true;
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined || typeof v === 'function') continue;
      yield `${first ? '' : ','}${JSON.stringify(k)}:`;
      first = false;
      yield* jsonChunks(v);
    }
    yield '}';
    return;
  }
  yield JSON.stringify(value) ?? 'null';
}

/** Pieces joined into strings of about `chars` characters: few writes, no giant string. */
export function* batched(pieces: Iterable<string>, chars = 64 * 1024): Generator<string> {
  let buf: string[] = [];
  let size = 0;
  for (const p of pieces) {
    buf.push(p);
    size += p.length;
    if (size >= chars) {
      yield buf.join('');
      buf = [];
      size = 0;
    }
  }
  if (size > 0) yield buf.join('');
}

function six(code: number): string {
  return String(code).padStart(6, '0');
}

type DocItem = DecodedMessage['items'][number][number];

/** One element of a compressed message: a single value when all subsets agree, like ecCodes. */
function columnEntryJson(it: DocItem): Record<string, unknown> {
  const first = valueAt(it.vals, 0);
  const col = it.vals.length === 1 ? undefined : columnJson(it.vals);
  const same = col === undefined || col.every((v) => v === first);
  const o: Record<string, unknown> = {
    descriptor: six(it.code),
    key: it.def.key,
    name: it.def.name,
    unit: it.def.unit,
  };
  if (same) o['value'] = first;
  else o['values'] = col;
  if (it.kind !== 'element') o['kind'] = it.kind;
  return o;
}

/**
 * A JSON-serialisable document of a decode result (byte runs and sweep arrays replaced by sizes).
 * The per-element and per-subset parts are {@link LazyArray}s: `JSON.stringify` gives the whole
 * document, {@link jsonChunks} streams it.
 */
export function toJsonDocument(result: DecodeResult, file: string, opts: JsonDocumentOptions = {}): unknown {
  return {
    file,
    messages: new LazyArray(() =>
      mapIter(result.messages, (m) => {
        if (!m.ok)
          return {
            number: m.number,
            offset: m.offset,
            ok: false,
            header: m.header ?? null,
            error: { code: m.error.code, message: m.error.message },
          };
        return {
          number: m.number,
          offset: m.offset,
          ok: true,
          header: m.header,
          tables: m.tables,
          // Compressed messages share one element list: write it once with a value per subset
          // (a single value when all subsets agree), like ecCodes does.
          ...(m.header.compressed
            ? {
                elements: new LazyArray(() => mapIter(m.items[0]!, columnEntryJson)),
              }
            : {
                subsets: new LazyArray(() => {
                  const writer = new SubsetJsonWriter();
                  return mapIter(m.items, (list) => new RawJson(writer.flatText(list)));
                }),
              }),
          ...(m.radarError ? { radarError: { code: m.radarError.code, message: m.radarError.message } } : {}),
          ...(m.partial
            ? {
                partial: {
                  code: m.partial.code,
                  descriptor: String(m.partial.descriptor ?? 0).padStart(6, '0'),
                  message: m.partial.message,
                },
              }
            : {}),
          ...(opts.nested
            ? {
                nested: new LazyArray<unknown>(() => {
                  if (m.header.compressed) return compressedNested(m);
                  const writer = new SubsetJsonWriter();
                  return mapIter(range(subsetCount(m)), (s) => new RawJson(writer.nestedText(m.items[s]!, m.tree[s]!)));
                }),
              }
            : {}),
          ...(m.radar
            ? {
                radar: {
                  ...m.radar,
                  sweeps: m.radar.sweeps.map(({ data, compressed, ...rest }, i) => ({
                    ...rest,
                    values: data.length,
                    ...(opts.sweepFile ? { file: opts.sweepFile(i) } : {}),
                  })),
                },
              }
            : {}),
        };
      }),
    ),
  };
}
