/**
 * Helpers for the BUFR conformance tests: locate the shared fixtures and compare our decoder's
 * output with an ecCodes `bufr_dump -jf` dump, element by element (aligned on ecCodes' `index`).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { DecodedMessage, DecodeResult } from '../../plugins/bufr/decoder/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..');

/** Where the shared fixtures are, or undefined (with the reason) when absent. */
export function bufrFixturesDir(): string | undefined {
  const { POLLER_BUFR_FIXTURES: fromEnv, CI: ci } = process.env;
  const dir = fromEnv ?? path.resolve(REPO_ROOT, '..', 'shared', 'fixtures', 'bufr');
  if (existsSync(path.join(dir, 'MANIFEST.md'))) return dir;
  if (ci === 'true') throw new Error(`BUFR fixtures not found at ${dir}; set POLLER_BUFR_FIXTURES`);
  console.warn(`[bufr] fixtures not found at ${dir}: skipping (set POLLER_BUFR_FIXTURES to run these tests)`);
  return undefined;
}

/** One entry of an ecCodes flat JSON dump. */
export interface EcEntry {
  key: string;
  value: unknown;
  index?: number;
  code?: string;
  units?: string;
  scale?: number;
}

/** Read `<base>.eccodes.json` or `<base>.eccodes.json.gz`. */
export function readEccodesJson(base: string): EcEntry[] | undefined {
  if (existsSync(`${base}.eccodes.json`))
    return (JSON.parse(readFileSync(`${base}.eccodes.json`, 'utf8')) as { messages: EcEntry[] }).messages;
  if (existsSync(`${base}.eccodes.json.gz`))
    return (JSON.parse(gunzipSync(readFileSync(`${base}.eccodes.json.gz`)).toString('utf8')) as { messages: EcEntry[] })
      .messages;
  return undefined;
}

/** Split a multi-message dump: the index restarts with each message. */
export function splitEccodesMessages(entries: readonly EcEntry[]): EcEntry[][] {
  const out: EcEntry[][] = [];
  let current: EcEntry[] = [];
  let prev = 0;
  for (const e of entries) {
    if (e.index === undefined) continue;
    if (e.index <= prev && current.length > 0) {
      out.push(current);
      current = [];
    }
    current.push(e);
    prev = e.index;
  }
  if (current.length > 0) out.push(current);
  return out;
}

const MARKER_KEYS: Record<string, string> = {
  substitutedValue: 'substituted',
  firstOrderStatisticalValue: 'firstOrder',
  differenceStatisticalValue: 'difference',
  replacedRetainedValue: 'replaced',
  text: 'text',
};

// ecCodes keeps trailing blanks in compressed messages (poller drops them): compare without them.
// Leading blanks are data on both sides.
function norm(v: unknown): unknown {
  return typeof v === 'string' ? v.replace(/[\s\0]+$/, '') : v;
}

function sameValue(ours: unknown, theirs: unknown, scale: number): boolean {
  if (theirs === null || theirs === undefined) return ours === null;
  if (typeof theirs === 'string') return typeof ours === 'string' && norm(ours) === norm(theirs);
  if (typeof theirs === 'number') {
    if (typeof ours !== 'number') return false;
    const tol = 0.5 * 10 ** -scale + 1e-9 * Math.abs(theirs);
    if (Math.abs(ours - theirs) <= tol) return true;
    // bufr_dump prints numbers with %g-like precision (6 significant digits).
    if (theirs === 0) return false;
    const ulp = 10 ** (Math.floor(Math.log10(Math.abs(theirs))) - 5);
    return Math.abs(ours - theirs) <= 0.5 * ulp * (1 + 1e-6);
  }
  return false;
}

/**
 * The entries of a flat dump with the attributes ecCodes nests in them (an element's
 * `associatedField`, and that field's `associatedFieldSignificance`), each an entry with an index.
 */
function withAttributes(ec: readonly EcEntry[]): EcEntry[] {
  const out: EcEntry[] = [];
  const visit = (e: EcEntry): void => {
    out.push(e);
    for (const [k, v] of Object.entries(e)) {
      if (k === 'value' || v === null || typeof v !== 'object' || Array.isArray(v)) continue;
      const attr = v as EcEntry;
      if (typeof attr.key === 'string' && typeof attr.index === 'number') visit(attr);
    }
  };
  for (const e of ec) visit(e);
  return out;
}

/** Outcome of comparing one message. */
export interface MessageComparison {
  values: number;
  agree: number;
  mismatches: string[];
}

/** Compare one decoded message with its ecCodes entries. */
export function compareMessage(msg: DecodedMessage, ec: readonly EcEntry[]): MessageComparison {
  const res: MessageComparison = { values: 0, agree: 0, mismatches: [] };
  const n = msg.header.numberOfSubsets;
  // index -> values per subset
  const byIndex = new Map<number, { descriptor: string; kind: string; values: unknown[] }>();
  if (msg.header.compressed) {
    for (let s = 0; s < n; s++) {
      for (const e of msg.subsets[s]!) {
        let slot = byIndex.get(e.index);
        if (!slot) {
          slot = { descriptor: e.descriptor, kind: e.kind, values: [] };
          byIndex.set(e.index, slot);
        }
        slot.values.push(e.value);
      }
    }
  } else {
    for (const sub of msg.subsets)
      for (const e of sub) byIndex.set(e.index, { descriptor: e.descriptor, kind: e.kind, values: [e.value] });
  }
  for (const e of withAttributes(ec)) {
    const ours = byIndex.get(e.index!);
    const theirs = Array.isArray(e.value) ? e.value : undefined;
    const count = msg.header.compressed ? n : 1;
    const where = `index ${e.index} ${e.code ?? e.key}`;
    if (e.key === 'operator') {
      if (!ours || ours.descriptor !== e.code)
        res.mismatches.push(`${where}: operator expected, got ${ours?.descriptor}`);
      continue;
    }
    res.values += count;
    if (!ours) {
      res.mismatches.push(`${where}: missing in our output`);
      continue;
    }
    if (e.code !== undefined ? ours.descriptor !== e.code : MARKER_KEYS[e.key] !== ours.kind) {
      res.mismatches.push(`${where}: descriptor ${ours.descriptor} (${ours.kind}) in our output`);
      continue;
    }
    const scale = e.scale ?? 0;
    let ok = 0;
    for (let s = 0; s < count; s++) {
      const t = theirs ? theirs[s] : e.value;
      if (sameValue(ours.values[s], t, scale)) ok++;
      else if (res.mismatches.length < 20)
        res.mismatches.push(
          `${where} subset ${s + 1}: ours ${JSON.stringify(ours.values[s])} ecCodes ${JSON.stringify(t)}`,
        );
    }
    res.agree += ok;
  }
  return res;
}

/** Compare a whole decode with a whole dump. */
export function compareWithEccodes(result: DecodeResult, entries: readonly EcEntry[]) {
  const ecMessages = splitEccodesMessages(entries);
  const ours = result.messages;
  const out = { messages: ecMessages.length, messagesAgree: 0, values: 0, valuesAgree: 0, mismatches: [] as string[] };
  ecMessages.forEach((ec, i) => {
    const m = ours[i];
    const valueCount = ec.filter((e) => e.key !== 'operator').length;
    if (m === undefined || !m.ok) {
      out.values += valueCount;
      out.mismatches.push(`message ${i + 1}: ${m ? m.error.message : 'not found'}`);
      return;
    }
    const c = compareMessage(m, ec);
    out.values += c.values;
    out.valuesAgree += c.agree;
    if (c.mismatches.length === 0 && c.agree === c.values) out.messagesAgree++;
    else out.mismatches.push(...c.mismatches.slice(0, 10).map((s) => `message ${i + 1}: ${s}`));
  });
  return out;
}
