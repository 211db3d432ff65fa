/**
 * `decodeBufr(bytes, options)`: every BUFR message in a byte stream, decoded to a flat list of
 * values per subset, a nested tree, and (for ODIM-in-BUFR polar volumes) radar sweeps.
 */
import { BitReader, BitsExhaustedError } from './bit-reader.js';
import { DataDecoder, type Item, type ItemKind, type Node, valueAt } from './data.js';
import { BufrError } from './errors.js';
import { extractRadarVolume, type RadarVolume } from './radar.js';
import { type BufrHeader, findMessages, readSections } from './sections.js';
import {
  isLocalDescriptor,
  type LocalTable,
  loadLocalTables,
  masterTables,
  type TableLookup,
  tablesFor,
} from './tables.js';

export { type Column, valueAt } from './data.js';
export { BufrError } from './errors.js';
export type { RadarSweep, RadarVolume } from './radar.js';
export type { BufrHeader } from './sections.js';

/** Options for {@link decodeBufr}. */
export interface DecodeOptions {
  /** Local tables: a directory (ecCodes or OPERA CSV files), or tables already loaded. */
  tables?: string | readonly LocalTable[];
  /** Extract ODIM polar volumes (inflate each sweep). @default true */
  radar?: boolean;
  /** Per-message bound on stored values. @default 5_000_000 */
  maxValues?: number;
}

/** One value in a subset's flat list. */
export interface BufrEntry {
  /** FXXYYY, six digits (`012101`); `999999` for an associated field. */
  descriptor: string;
  key: string;
  name: string;
  unit: string;
  /** Scale in effect (after operators); numbers are already scaled. */
  scale: number;
  /** Number, trimmed string, or null when missing. */
  value: number | string | null;
  /** Position in the message's element list, 1-based and running across subsets (as ecCodes `index`). */
  index: number;
  kind: ItemKind;
  /** For `kind: 'bytes'`: the raw run of 8-bit values (ODIM compressed arrays). */
  bytes?: Uint8Array;
}

/** A decoded message. */
export interface DecodedMessage {
  ok: true;
  /** 0-based position among the messages found in the input. */
  number: number;
  offset: number;
  length: number;
  header: BufrHeader;
  /** Master table version used (the nearest shipped one) and the tables description. */
  tables: { masterVersion: number; label: string };
  /** Flat list of values, one array per subset. */
  subsets: BufrEntry[][];
  /** Descriptor tree, rendered per subset by {@link toNestedJson}. */
  tree: Node[][];
  items: Item[][];
  radar?: RadarVolume;
  /** Set when the values decoded but the radar volume in them could not be extracted (bad layout, zlib error). */
  radarError?: BufrError;
  /**
   * Set when decoding stopped at a descriptor no loaded table defines (`BUFR_PARTIAL`, with the
   * missing descriptor): the values before it are here (in every subset when compressed; in the
   * subsets before it and the one it stopped in when not), nothing after it.
   */
  partial?: BufrError;
}

/** A message that could not be decoded; the other messages are unaffected. */
export interface FailedMessage {
  ok: false;
  number: number;
  offset: number;
  length?: number;
  header?: BufrHeader;
  error: BufrError;
}

/** Everything found in the input. */
export interface DecodeResult {
  messages: Array<DecodedMessage | FailedMessage>;
}

// Ten times the largest real message in the fixture set; keeps a corrupt one well under 1 GB.
const DEFAULT_MAX_VALUES = 5_000_000;

function six(code: number): string {
  return String(code).padStart(6, '0');
}

function toEntries(items: readonly Item[], subset: number, firstIndex: number): { entries: BufrEntry[]; next: number } {
  const entries: BufrEntry[] = new Array(items.length);
  let index = firstIndex;
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    const value = valueAt(it.vals, subset);
    const e: BufrEntry = {
      descriptor: six(it.code),
      key: it.def.key,
      name: it.def.name,
      unit: it.def.unit,
      scale: it.def.scale,
      value,
      index,
      kind: it.kind,
    };
    if (it.bytes) e.bytes = it.bytes;
    entries[i] = e;
    index += it.bytes ? it.bytes.length : 1;
  }
  return { entries, next: index };
}

function isRadarCandidate(h: BufrHeader): boolean {
  return h.dataCategory === 6 || h.centre === 247;
}

function describeMessage(number: number, offset: number, h: BufrHeader): string {
  return `message ${number + 1} (byte ${offset}, edition ${h.edition}, centre ${h.centre}, sub-centre ${h.subCentre}, master table ${h.masterTablesVersion}, local table ${h.localTablesVersion})`;
}

function fxy(code: number): string {
  return `${Math.floor(code / 100000)}-${String(Math.floor(code / 1000) % 100).padStart(2, '0')}-${String(code % 1000).padStart(3, '0')}`;
}

/** The partial-decode note: which descriptor stopped it, which table defines it, where to get one. */
function partialError(
  cause: BufrError,
  descriptor: number,
  h: BufrHeader,
  describe: string,
  subsetsWithValues: number,
): BufrError {
  const where = h.compressed
    ? `every subset has the values before it`
    : `${subsetsWithValues} of ${h.numberOfSubsets} subset(s) have values, the last up to it`;
  const table = isLocalDescriptor(descriptor)
    ? `a local descriptor of centre ${h.centre} (sub-centre ${h.subCentre}), local table version ${h.localTablesVersion}: ` +
      `get that centre's tables (ecCodes' definitions hold the ones it knows, under ` +
      `bufr/tables/0/local/${h.localTablesVersion}/${h.centre}/${h.subCentre}/) and pass their folder with --tables`
    : `not in WMO master table version ${h.masterTablesVersion} as shipped: pass a table that defines it with --tables`;
  return new BufrError(
    'BUFR_PARTIAL',
    `${describe}: decoded up to ${fxy(descriptor)}, which no loaded table defines; ${where}. It is ${table}`,
    { cause, descriptor },
  );
}

/** Decode one framed message. Throws BufrError. */
function decodeOne(
  bytes: Uint8Array,
  number: number,
  offset: number,
  length: number,
  local: readonly LocalTable[] | undefined,
  opts: DecodeOptions,
): DecodedMessage {
  const layout = readSections(bytes, offset, length);
  const h = layout.header;
  const describe = describeMessage(number, offset, h);
  const tables: TableLookup = tablesFor({
    masterTable: h.masterTable,
    masterVersion: h.masterTablesVersion,
    centre: h.centre,
    subCentre: h.subCentre,
    localVersion: h.localTablesVersion,
    ...(local ? { local } : {}),
    opera: isRadarCandidate(h),
  });
  if (h.descriptors.length === 0)
    throw new BufrError('BUFR_NO_DESCRIPTORS', `${describe}: Section 3 has no descriptors`);
  const reader = new BitReader(bytes, layout.dataStartBit, layout.dataEndBit);
  const totalBits = layout.dataEndBit - layout.dataStartBit;
  const limits = {
    maxSteps: 2 * totalBits + 100_000,
    used: { steps: 0 },
    maxValues: opts.maxValues ?? DEFAULT_MAX_VALUES,
  };
  const items: Item[][] = [];
  const tree: Node[][] = [];
  let current: DataDecoder | undefined;
  let partial: BufrError | undefined;
  try {
    if (h.compressed) {
      current = new DataDecoder(reader, tables, h.numberOfSubsets, true, limits, describe);
      current.run(h.descriptors, 0);
      items.push(current.items);
      tree.push(current.root);
    } else {
      let values = 0;
      for (let s = 0; s < h.numberOfSubsets; s++) {
        current = new DataDecoder(
          reader,
          tables,
          1,
          false,
          { maxSteps: limits.maxSteps, used: limits.used, maxValues: limits.maxValues - values },
          `${describe} subset ${s + 1}`,
        );
        current.run(h.descriptors, 0);
        values += current.items.length;
        items.push(current.items);
        tree.push(current.root);
      }
    }
  } catch (err) {
    if (err instanceof BitsExhaustedError)
      throw new BufrError('BUFR_TRUNCATED', `${describe}: ${err.message} (wrong tables or a corrupt message)`, {
        cause: err,
      });
    // A descriptor no table defines: its width is unknown, so nothing after it can be read; what
    // came before it (the WMO part: station, time, position) is kept when there is any.
    const stoppedAt = current?.items.length ?? 0;
    if (!(err instanceof BufrError && err.descriptor !== undefined) || (items.length === 0 && stoppedAt === 0))
      throw err;
    if (stoppedAt > 0) {
      items.push(current!.items);
      tree.push(current!.root);
    }
    partial = partialError(err, err.descriptor, h, describe, items.length);
  }
  const msg = {
    ok: true,
    number,
    offset,
    length,
    header: h,
    tables: { masterVersion: masterTables(h.masterTablesVersion).version, label: tables.label },
    tree,
    items,
    ...(partial ? { partial } : {}),
  } as DecodedMessage;
  // Built on first use: a compressed message with many subsets only pays for the flat form if asked.
  let cache: BufrEntry[][] | undefined;
  Object.defineProperty(msg, 'subsets', {
    enumerable: true,
    configurable: true, // tests replace it to prove the streaming paths never read it
    get: () => {
      cache ??= [...eachSubset(msg)];
      return cache;
    },
  });
  if ((opts.radar ?? true) && isRadarCandidate(h)) {
    try {
      const vol = extractRadarVolume(msg, describe);
      if (vol) msg.radar = vol;
    } catch (err) {
      msg.radarError =
        err instanceof BufrError
          ? err
          : new BufrError('BUFR_RADAR_LAYOUT', `${describe}: ${(err as Error).message}`, { cause: err });
    }
  }
  return msg;
}

/**
 * Decode every BUFR message in `bytes`. Messages that cannot be decoded come back with `ok: false`
 * and a {@link BufrError} naming the message and the cause; the others are unaffected.
 */
export function decodeBufr(bytes: Uint8Array, options: DecodeOptions = {}): DecodeResult {
  const local = typeof options.tables === 'string' ? loadLocalTables(options.tables) : options.tables;
  const out: DecodeResult = { messages: [] };
  findMessages(bytes).forEach((m, number) => {
    if (!m.ok) {
      out.messages.push({ ok: false, number, offset: m.offset, error: m.error });
      return;
    }
    try {
      out.messages.push(decodeOne(bytes, number, m.offset, m.length, local, options));
    } catch (err) {
      const error =
        err instanceof BufrError
          ? err
          : new BufrError('BUFR_INTERNAL', `message ${number + 1} (byte ${m.offset}): ${(err as Error).message}`, {
              cause: err,
            });
      let header: BufrHeader | undefined;
      try {
        header = readSections(bytes, m.offset, m.length).header;
      } catch {
        header = undefined;
      }
      out.messages.push({
        ok: false,
        number,
        offset: m.offset,
        length: m.length,
        ...(header ? { header } : {}),
        error,
      });
    }
  });
  return out;
}

/**
 * The flat list of each subset in turn, built as it is asked for: a compressed message of many
 * subsets never holds more than one subset's list (unlike `msg.subsets`, which keeps them all).
 */
export function* eachSubset(msg: DecodedMessage): Generator<BufrEntry[]> {
  if (msg.header.compressed) {
    const only = msg.items[0]!;
    for (let s = 0; s < msg.header.numberOfSubsets; s++) yield toEntries(only, s, 1).entries;
    return;
  }
  let index = 1;
  for (const list of msg.items) {
    const r = toEntries(list, 0, index);
    index = r.next;
    yield r.entries;
  }
}

/** Number of subsets that {@link eachSubset} yields. */
export function subsetCount(msg: DecodedMessage): number {
  return msg.header.compressed ? msg.header.numberOfSubsets : msg.items.length;
}

/** Number of values in the message's flat lists (items times subsets), without building them. */
export function valueCount(msg: DecodedMessage): number {
  if (msg.header.compressed) return msg.items[0]!.length * msg.header.numberOfSubsets;
  return msg.items.reduce((a, list) => a + list.length, 0);
}

/** Nested JSON of one subset: sequences as objects, replications as arrays of repetitions. */
export function toNestedJson(msg: DecodedMessage, subset = 0): unknown[] {
  const items = msg.header.compressed ? msg.items[0]! : msg.items[subset]!;
  const tree = msg.header.compressed ? msg.tree[0]! : msg.tree[subset]!;
  const s = msg.header.compressed ? subset : 0;
  const render = (nodes: readonly Node[]): unknown[] =>
    nodes.map((n) => {
      if (typeof n === 'number') {
        const it = items[n]!;
        if (it.bytes) return { descriptor: six(it.code), key: it.def.key, bytes: it.bytes.length };
        return {
          descriptor: six(it.code),
          key: it.def.key,
          value: valueAt(it.vals, s),
          ...(it.def.unit ? { unit: it.def.unit } : {}),
        };
      }
      if ('seq' in n) return { sequence: six(n.seq), items: render(n.children) };
      return { replication: six(n.rep), repetitions: n.reps.map((r) => render(r)) };
    });
  return render(tree);
}
