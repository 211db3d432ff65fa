/**
 * BUFR Table B (elements) and Table D (sequences): the WMO master tables and the local tables
 * ecCodes ships, both generated from ecCodes (`../tables/wmo-tables.json`, `../tables/local-tables.json`),
 * local tables loaded from a directory (ecCodes or OPERA CSV format) and a built-in copy of the
 * OPERA/ODIM radar local descriptors.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One Table B entry. */
export interface ElementDef {
  /** FXXYYY as an integer, e.g. 12101 for 0-12-101. */
  readonly code: number;
  /** ecCodes-style camelCase key, or one derived from the name for local entries. */
  readonly key: string;
  readonly name: string;
  readonly unit: string;
  readonly scale: number;
  readonly reference: number;
  readonly width: number;
  /** CCITT IA5 (character) element. */
  readonly isString: boolean;
}

/** Table B + Table D in effect for one message. */
export interface TableLookup {
  element(code: number): ElementDef | undefined;
  sequence(code: number): readonly number[] | undefined;
  /** Which tables are in effect, for error messages. */
  readonly label: string;
}

/** A set of local tables, each keyed by the centre/version it applies to (undefined = any). */
export interface LocalTable {
  readonly centre: number | undefined;
  readonly subCentre: number | undefined;
  readonly version: number | undefined;
  /** Set for ecCodes' `<master version>-<local version>` folders: only for that master version. */
  readonly masterVersion?: number | undefined;
  /** Master table number (0 meteorology, 3 oceanography, ...) of a shipped table. */
  readonly masterTable?: number | undefined;
  readonly source: string;
  readonly elements: Map<number, ElementDef>;
  readonly sequences: Map<number, readonly number[]>;
}

type RawElement = [string, string, string, number, number, number, string];
interface RawTables {
  versions: number[];
  newest: number;
  elements: Record<string, Record<string, RawElement | null>>;
  sequences: Record<string, Record<string, number[] | null>>;
}

/** Walk up from this module to the directory holding package.json: works from sources and from dist/. */
export function findRepoRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (let i = 0; i < 12; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`bufr: cannot find package.json above ${from}; the table data lives in plugins/bufr/tables`);
}

/** Path of the generated local table data (the local tables ecCodes ships). */
export function shippedLocalTablesPath(): string {
  return path.join(findRepoRoot(), 'plugins', 'bufr', 'tables', 'local-tables.json');
}

/** Path of the generated WMO table data. */
export function wmoTablesPath(): string {
  return path.join(findRepoRoot(), 'plugins', 'bufr', 'tables', 'wmo-tables.json');
}

let rawCache: RawTables | undefined;
const versionCache = new Map<number, MasterTables>();

/** Master tables of one version. */
export interface MasterTables {
  readonly version: number;
  readonly elements: Map<number, ElementDef>;
  readonly sequences: Map<number, readonly number[]>;
}

function loadRaw(): RawTables {
  rawCache ??= JSON.parse(readFileSync(wmoTablesPath(), 'utf8')) as RawTables;
  return rawCache;
}

/** Versions of the WMO master tables shipped. */
export function availableMasterVersions(): readonly number[] {
  return loadRaw().versions;
}

/** The shipped version nearest to `wanted` (ties go to the newer one). */
export function nearestMasterVersion(wanted: number): number {
  const versions = availableMasterVersions();
  let best = versions[versions.length - 1]!;
  for (const v of versions) {
    if (
      Math.abs(v - wanted) < Math.abs(best - wanted) ||
      (Math.abs(v - wanted) === Math.abs(best - wanted) && v > best)
    )
      best = v;
  }
  return best;
}

function toElement(code: number, r: RawElement): ElementDef {
  return {
    code,
    key: r[0],
    name: r[1],
    unit: r[2],
    scale: r[3],
    reference: r[4],
    width: r[5],
    isString: r[6] === 'string' || r[2] === 'CCITT IA5',
  };
}

/** WMO master Table B/D of `version`, or of the nearest shipped version. */
export function masterTables(wanted: number): MasterTables {
  const version = nearestMasterVersion(wanted);
  const cached = versionCache.get(version);
  if (cached) return cached;
  const raw = loadRaw();
  // Newest stored whole; each older version stores what differs from the next newer one. Each
  // version is built from the next newer one (cached), so a run that meets many versions converts
  // every entry once, not once per version.
  const newer = raw.versions.filter((v) => v > version).sort((a, b) => a - b)[0];
  let elements: Map<number, ElementDef>;
  let sequences: Map<number, readonly number[]>;
  if (newer === undefined) {
    elements = new Map();
    sequences = new Map();
  } else {
    const base = masterTables(newer);
    elements = new Map(base.elements);
    sequences = new Map(base.sequences);
  }
  for (const [k, r] of Object.entries(raw.elements[String(version)] ?? {})) {
    if (r) elements.set(Number(k), toElement(Number(k), r));
    else elements.delete(Number(k));
  }
  for (const [k, q] of Object.entries(raw.sequences[String(version)] ?? {})) {
    if (q) sequences.set(Number(k), q);
    else sequences.delete(Number(k));
  }
  const t = { version, elements, sequences };
  versionCache.set(version, t);
  return t;
}

function keyFromName(name: string): string {
  const words = name
    .replace(/[^A-Za-z0-9 ]+/g, ' ')
    .trim()
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w !== '');
  return words.map((w, i) => (i === 0 ? w : w.charAt(0).toUpperCase() + w.slice(1))).join('') || 'unnamed';
}

/** Parse an OPERA-software CSV Table B (`F;XX;YYY;name;unit;scale;reference;width`). */
export function parseOperaTableB(text: string): Map<number, ElementDef> {
  const out = new Map<number, ElementDef>();
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const f = line.split(';').map((s) => s.trim());
    if (f.length < 8) continue;
    const code = Number(f[0]) * 100000 + Number(f[1]) * 1000 + Number(f[2]);
    const unit = f[4] ?? '';
    const scale = Number(f[5]);
    const reference = Number(f[6]);
    const width = Number(f[7]);
    if (![code, scale, reference, width].every(Number.isFinite)) continue;
    const name = f[3] ?? '';
    out.set(code, {
      code,
      key: keyFromName(name),
      name,
      unit,
      scale,
      reference,
      width,
      isString: /CCITT|IA5/i.test(unit),
    });
  }
  return out;
}

/** Parse an OPERA-software CSV Table D (`F;XX;YYY;F;XX;YYY`, continuation rows start empty). */
export function parseOperaTableD(text: string): Map<number, readonly number[]> {
  const out = new Map<number, number[]>();
  let current: number[] | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const f = line.split(';').map((s) => s.trim());
    if (f.length < 6) continue;
    if (f[0] !== '') {
      const code = Number(f[0]) * 100000 + Number(f[1]) * 1000 + Number(f[2]);
      if (!Number.isFinite(code)) continue;
      current = [];
      out.set(code, current);
    }
    const child = Number(f[3]) * 100000 + Number(f[4]) * 1000 + Number(f[5]);
    if (current && Number.isFinite(child)) current.push(child);
  }
  return out;
}

/**
 * Parse a BUFRDC text Table B (`B<digits>.txt`, as ECMWF's BUFRDC, wreport/dballe and libecbufr
 * ship them): fixed columns, code 2-7, name 9-72, unit 74-97, then scale, reference and width.
 * Only local entries (X >= 48 or Y >= 192) are kept: these files hold a whole master table too,
 * and the shipped WMO tables stay in charge of that part.
 */
export function parseBufrdcTableB(text: string): Map<number, ElementDef> {
  const out = new Map<number, ElementDef>();
  for (const line of text.split(/\r?\n/)) {
    const code = Number(line.slice(1, 7));
    if (line.length < 100 || !/^\d{6}$/.test(line.slice(1, 7)) || !isLocalDescriptor(code)) continue;
    const nums = /^\s*(-?\d+)\s+(-?\d+)\s+(\d+)/.exec(line.slice(97));
    if (!nums) continue;
    const name = line.slice(8, 72).trim();
    const raw = line.slice(73, 97).trim();
    const isString = /^CCITT\s*IA5$/i.test(raw);
    const unit = isString ? 'CCITT IA5' : raw;
    const row: RawElement = [
      keyFromName(name),
      name,
      unit,
      Number(nums[1]),
      Number(nums[2]),
      Number(nums[3]),
      isString ? 'string' : '',
    ];
    out.set(code, toElement(code, row));
  }
  return out;
}

/** Parse a BUFRDC text Table D (`D<digits>.txt`): ` 3XXYYY  N FXXYYY`, continuation lines hold one child each. */
export function parseBufrdcTableD(text: string): Map<number, readonly number[]> {
  const out = new Map<number, number[]>();
  let current: number[] | undefined;
  for (const line of text.split(/\r?\n/)) {
    const head = /^ (3\d{5})\s+\d+\s+(\d{6})\s*$/.exec(line);
    if (head) {
      const code = Number(head[1]);
      current = isLocalDescriptor(code) ? [] : undefined;
      if (current) out.set(code, current);
      current?.push(Number(head[2]));
      continue;
    }
    const child = /^\s{8,}(\d{6})\s*$/.exec(line);
    if (child && current) current.push(Number(child[1]));
  }
  return out;
}

/** Parse an ecCodes `element.table`. */
export function parseEccodesElements(text: string): Map<number, ElementDef> {
  const out = new Map<number, ElementDef>();
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split('|');
    if (f.length < 8) continue;
    const code = Number(f[0]);
    if (!Number.isFinite(code)) continue;
    out.set(
      code,
      toElement(code, [f[1]!, f[3]!.trim(), f[4]!.trim(), Number(f[5]), Number(f[6]), Number(f[7]), f[2]!]),
    );
  }
  return out;
}

/** Parse an ecCodes `sequence.def`. */
export function parseEccodesSequences(text: string): Map<number, readonly number[]> {
  const out = new Map<number, readonly number[]>();
  const re = /"(\d{6})"\s*=\s*\[([^\]]*)\]/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.set(
      Number(m[1]),
      (m[2] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map(Number),
    );
  }
  return out;
}

interface RawLocal {
  masterTable: number;
  masterVersion: number | null;
  localVersion: number;
  centre: number;
  subCentre: number;
  path: string;
  sameAs?: number;
  elements?: Record<string, RawElement>;
  sequences?: Record<string, number[]>;
}

let shippedRaw: RawLocal[] | undefined;
const shippedBuilt = new Map<number, LocalTable>();

function loadShippedRaw(): RawLocal[] {
  shippedRaw ??= (JSON.parse(readFileSync(shippedLocalTablesPath(), 'utf8')) as { tables: RawLocal[] }).tables;
  return shippedRaw;
}

// Built on first use: a run that meets one centre pays for that table only.
function buildShipped(i: number): LocalTable {
  const cached = shippedBuilt.get(i);
  if (cached) return cached;
  const r = loadShippedRaw()[i]!;
  let elements: Map<number, ElementDef>;
  let sequences: Map<number, readonly number[]>;
  if (r.sameAs !== undefined) {
    const base = buildShipped(r.sameAs);
    elements = base.elements;
    sequences = base.sequences;
  } else {
    elements = new Map();
    for (const [k, e] of Object.entries(r.elements ?? {})) elements.set(Number(k), toElement(Number(k), e));
    sequences = new Map();
    for (const [k, q] of Object.entries(r.sequences ?? {})) sequences.set(Number(k), q);
  }
  const t: LocalTable = {
    centre: r.centre,
    subCentre: r.subCentre,
    version: r.localVersion,
    masterVersion: r.masterVersion ?? undefined,
    masterTable: r.masterTable,
    source: r.path,
    elements,
    sequences,
  };
  shippedBuilt.set(i, t);
  return t;
}

/** The local tables ecCodes ships (ECMWF, DWD, EUMETSAT, ...), generated into the project. */
export function shippedLocalTables(): readonly LocalTable[] {
  return loadShippedRaw().map((_, i) => buildShipped(i));
}

/**
 * The shipped local table ecCodes would use for a message: exactly
 * `<master table>/local/<local version>/<centre>/<sub-centre>`, or for master version 19
 * `<master table>/local/19-<local version>/<centre>/<sub-centre>` (ecCodes' section.3.def).
 */
export function shippedLocalTable(
  masterTable: number,
  masterVersion: number,
  centre: number,
  subCentre: number,
  localVersion: number,
): LocalTable | undefined {
  if (localVersion === 0) return undefined;
  const wantMaster = masterVersion === 19 ? 19 : null;
  const i = loadShippedRaw().findIndex(
    (t) =>
      t.masterTable === masterTable &&
      t.centre === centre &&
      t.subCentre === subCentre &&
      t.localVersion === localVersion &&
      t.masterVersion === wantMaster,
  );
  return i < 0 ? undefined : buildShipped(i);
}

const MAX_TABLE_DIR_DEPTH = 5; // ecCodes nests local tables as <version>/<centre>/<subcentre>/
const MAX_TABLE_FILES = 2000; // a mistaken --tables / pointing at a huge tree must not hang

/**
 * Load every local table under `dir`: ecCodes (`element.table` + `sequence.def`; numeric parent
 * folders read as .../<version>/<centre>/<subCentre>/), OPERA CSV (`localtabb_<centre>_<version>.csv`,
 * `localtabd_<centre>_<version>.csv`) and BUFRDC text tables (`B…<centre><master><local>.txt`,
 * `D….txt`, as wreport/dballe and libecbufr use them).
 */
export function loadLocalTables(dir: string): LocalTable[] {
  const tables = new Map<string, LocalTable>();
  let seen = 0;
  const get = (
    key: string,
    centre?: number,
    subCentre?: number,
    version?: number,
    source = key,
    masterVersion?: number,
  ): LocalTable => {
    let t = tables.get(key);
    if (!t) {
      t = { centre, subCentre, version, masterVersion, source, elements: new Map(), sequences: new Map() };
      tables.set(key, t);
    }
    return t;
  };
  const walk = (d: string, depth: number): void => {
    if (depth > MAX_TABLE_DIR_DEPTH) return;
    for (const name of readdirSync(d).sort()) {
      if (++seen > MAX_TABLE_FILES) return;
      if (name.startsWith('.')) continue;
      const p = path.join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) {
        if (name !== 'codetables') walk(p, depth + 1);
        continue;
      }
      const csv = /^localtab([bd])_(\d+)_(\d+)\.csv$/i.exec(name);
      if (csv) {
        const t = get(`csv:${csv[2]}:${csv[3]}`, Number(csv[2]), undefined, Number(csv[3]), p);
        const text = readFileSync(p, 'latin1');
        if (csv[1]!.toLowerCase() === 'b') for (const [k, v] of parseOperaTableB(text)) t.elements.set(k, v);
        else for (const [k, v] of parseOperaTableD(text)) t.sequences.set(k, v);
        continue;
      }
      // BUFRDC names: B/D, then digits ending <centre:5><master version:3><local version:3>.
      const bufrdc = /^([BD])(\d{11,})\.txt$/i.exec(name);
      if (bufrdc) {
        const digits = bufrdc[2]!;
        const centre = Number(digits.slice(-11, -6));
        const version = Number(digits.slice(-3));
        const t = get(`bufrdc:${centre}:${version}`, centre, undefined, version, p);
        const text = readFileSync(p, 'latin1');
        if (bufrdc[1]!.toUpperCase() === 'B') for (const [k, v] of parseBufrdcTableB(text)) t.elements.set(k, v);
        else for (const [k, v] of parseBufrdcTableD(text)) t.sequences.set(k, v);
        continue;
      }
      if (name === 'element.table' || name === 'sequence.def') {
        const rel = path
          .relative(dir, d)
          .split(path.sep)
          .filter((s) => s !== '');
        // `<local version>` or ecCodes' `<master version>-<local version>` (as in 19-1/98/0).
        const parsed = rel.map((s) => /^(?:(\d+)-)?(\d+)$/.exec(s));
        const nums = parsed.map((m) => (m ? Number(m[2]) : undefined));
        const n = nums.length;
        const [version, centre, subCentre] =
          n >= 3
            ? [nums[n - 3], nums[n - 2], nums[n - 1]]
            : n === 2
              ? [nums[0], nums[1], undefined]
              : [undefined, undefined, undefined];
        const versionSeg = n >= 3 ? parsed[n - 3] : n === 2 ? parsed[0] : undefined;
        const masterVersion = versionSeg?.[1] === undefined ? undefined : Number(versionSeg[1]);
        const t = get(`ec:${d}`, centre, subCentre, version, d, masterVersion);
        const text = readFileSync(p, 'latin1');
        if (name === 'element.table') for (const [k, v] of parseEccodesElements(text)) t.elements.set(k, v);
        else for (const [k, v] of parseEccodesSequences(text)) t.sequences.set(k, v);
      }
    }
  };
  walk(dir, 0);
  return [...tables.values()];
}

/** The local table that best fits a message: exact centre and version first, then centre, then generic. */
export function selectLocalTable(
  tables: readonly LocalTable[],
  centre: number,
  subCentre: number,
  version: number,
  masterVersion?: number,
): LocalTable | undefined {
  let best: LocalTable | undefined;
  let bestScore = -1;
  for (const t of tables) {
    if (t.centre !== undefined && t.centre !== centre) continue;
    // A `<master>-<local>` folder is for that master version only (ecCodes uses it for 19).
    if (t.masterVersion !== undefined && masterVersion !== undefined && t.masterVersion !== masterVersion) continue;
    let score = t.centre === centre ? 100 : 0;
    if (t.masterVersion !== undefined) score += 30;
    if (t.version !== undefined) score += t.version === version ? 20 : 10 - Math.min(9, Math.abs(t.version - version));
    if (t.subCentre !== undefined) score += t.subCentre === subCentre ? 5 : -50;
    if (score > bestScore) {
      best = t;
      bestScore = score;
    }
  }
  return best;
}

const el = (
  code: number,
  key: string,
  name: string,
  unit: string,
  scale: number,
  reference: number,
  width: number,
) => ({
  code,
  key,
  name,
  unit,
  scale,
  reference,
  width,
  isString: unit === 'CCITT IA5',
});

/**
 * The OPERA/ODIM-in-BUFR local descriptors every OPERA-software writer uses (centre 247, BALTRAD,
 * SMN/INVAP centre 41), so polar volumes decode without a tables directory.
 */
export const OPERA_LOCAL: { elements: Map<number, ElementDef>; sequences: Map<number, readonly number[]> } = {
  elements: new Map<number, ElementDef>(
    [
      el(1192, 'typeOfStationIdentifier', 'Type of station identifier', 'CCITT IA5', 0, 0, 24),
      el(1193, 'stationIdentifier', 'Station identifier', 'CCITT IA5', 0, 0, 128),
      el(21201, 'rangeBinSize', 'Range-bin size', 'm', 0, 0, 14),
      el(21203, 'rangeBinOffset', 'Range-bin offset', 'm', -1, 0, 14),
      el(30194, 'numberOfBinsAlongTheRadial', 'Number of bins along the radial', 'Numeric', 0, 0, 12),
      el(30195, 'numberOfAzimuths', 'Number of azimuths', 'Numeric', 0, 0, 11),
      el(30196, 'typeOfProduct', 'Type of product', 'CODE TABLE', 0, 0, 8),
      el(30197, 'compressionMethod', 'Compression method', 'CODE TABLE', 0, 0, 8),
      el(30198, 'byteElementOfCompressedArray', 'Byte element of a compressed array', 'Numeric', 0, 0, 8),
    ].map((e) => [e.code, e]),
  ),
  sequences: new Map<number, readonly number[]>([
    [321203, [112000, 31001, 321205, 30196, 2135, 30194, 21201, 21203, 30195, 2134, 102000, 31001, 30196, 321206]],
    [321204, [102000, 31001, 1192, 1193]],
    [321205, [102002, 301011, 301013]],
    [321206, [30197, 103000, 31002, 101000, 31002, 30198]],
  ]),
};

/** Whether X/Y lie in the local ranges (X >= 48 or Y >= 192). */
export function isLocalDescriptor(code: number): boolean {
  return ((code / 1000) | 0) % 100 >= 48 || code % 1000 >= 192;
}

/** Options that pick the tables for a message. */
export interface TableChoice {
  /** Master table number (Section 1), 0 for meteorology. @default 0 */
  masterTable?: number;
  masterVersion: number;
  centre: number;
  subCentre: number;
  localVersion: number;
  local?: readonly LocalTable[];
  /** Use the built-in OPERA radar descriptors when a local descriptor is not found elsewhere. */
  opera: boolean;
  /** Use the local tables ecCodes ships when no table in `local` fits. @default true */
  shipped?: boolean;
}

/** Combine master, local and built-in tables for one message. */
export function tablesFor(choice: TableChoice): TableLookup {
  const master = masterTables(choice.masterVersion);
  const given = choice.local
    ? selectLocalTable(choice.local, choice.centre, choice.subCentre, choice.localVersion, choice.masterVersion)
    : undefined;
  // Tables given with --tables win; otherwise the one ecCodes would pick from what it ships.
  const local =
    given ??
    ((choice.shipped ?? true)
      ? shippedLocalTable(
          choice.masterTable ?? 0,
          choice.masterVersion,
          choice.centre,
          choice.subCentre,
          choice.localVersion,
        )
      : undefined);
  const opera = choice.opera ? OPERA_LOCAL : undefined;
  const label =
    `centre ${choice.centre}, sub-centre ${choice.subCentre}, master table version ${choice.masterVersion}` +
    `${master.version !== choice.masterVersion ? ` (using ${master.version})` : ''}, local table version ${choice.localVersion}` +
    (given
      ? ` (local tables ${path.basename(given.source)})`
      : local
        ? ` (shipped local tables ${local.source})`
        : choice.local && choice.local.length > 0
          ? ` (none of the ${choice.local.length} local tables loaded is for this centre, none shipped)`
          : ' (no local tables shipped for it or loaded)');
  return {
    label,
    // A local table overrides the master table (as in ecCodes); the OPERA set only fills gaps.
    element(code) {
      return (
        local?.elements.get(code) ??
        master.elements.get(code) ??
        (isLocalDescriptor(code) ? opera?.elements.get(code) : undefined)
      );
    },
    sequence(code) {
      return (
        local?.sequences.get(code) ??
        master.sequences.get(code) ??
        (isLocalDescriptor(code) ? opera?.sequences.get(code) : undefined)
      );
    },
  };
}
