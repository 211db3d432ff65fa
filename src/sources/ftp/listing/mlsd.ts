/**
 * MLSD (RFC 3659): `fact=value;fact=value; name` per line, or ` name` with no facts. The name is
 * everything after the blank (or tab) that ends the facts, kept byte for byte. An entry without a
 * `modify` fact keeps an unknown time, and a file without `size` an unknown size: the lister asks
 * by MDTM and SIZE. A `modify` that is there but malformed refuses the line.
 */
import type { EntryType, MtimePrecision } from '../../source.js';
import { isValidDateTime } from './calendar.js';
import { IGNORED, type LineResult, type ParsedEntry, type ParsedListing, parseSize } from './types.js';

/** No real listing line is this long; longer ones are refused before any pattern runs. */
export const MAX_LINE_CHARS = 8192;

interface MlsdLine {
  readonly entry: ParsedEntry;
  readonly unique: string | undefined;
}

function parseMlsdLine(line: string): MlsdLine | typeof IGNORED | undefined {
  let factText: string;
  let name: string;
  if (line.startsWith(' ')) {
    factText = '';
    name = line.slice(1);
  } else {
    const m = /;[ \t]/.exec(line);
    if (!m) return undefined;
    factText = line.slice(0, m.index + 1);
    name = line.slice(m.index + 2);
    if (/[ \t]/.test(factText)) return undefined;
  }
  if (name === '') return undefined;
  const facts = new Map<string, string>();
  for (const fact of factText.split(';')) {
    if (fact === '') continue;
    const eq = fact.indexOf('=');
    if (eq <= 0) return undefined;
    const value = fact.slice(eq + 1);
    if (value !== '') facts.set(fact.slice(0, eq).toLowerCase(), value);
  }
  const typeValue = facts.get('type') ?? '';
  const typeFact = typeValue.toLowerCase();
  if (typeFact === 'cdir' || typeFact === 'pdir' || name === '.' || name === '..') return IGNORED;
  let type: EntryType;
  let linkTarget: string | undefined;
  // No type fact: RFC 3659 makes it optional; a plain file is what such servers list.
  if (typeFact === 'file' || typeFact === '') type = 'file';
  else if (typeFact === 'dir') type = 'dir';
  else if (typeFact === 'os.unix=slink' || typeFact.startsWith('os.unix=slink:') || typeFact === 'os.unix=symlink') {
    type = 'link';
    const colon = typeValue.indexOf(':');
    if (colon >= 0 && colon < typeValue.length - 1) linkTarget = typeValue.slice(colon + 1);
  } else {
    return undefined; // devices, OS-specific types
  }
  let sizeBytes: number | undefined;
  const sizeText = facts.get(type === 'dir' ? 'sizd' : 'size') ?? (type === 'dir' ? undefined : facts.get('sizd'));
  if (sizeText !== undefined) {
    sizeBytes = parseSize(sizeText);
    if (sizeBytes === undefined) return undefined;
  }
  const modify = facts.get('modify');
  let mtimeMs: number | undefined;
  let mtimePrecision: MtimePrecision = 's';
  if (modify !== undefined) {
    const t = parseMlsdTime(modify);
    if (t === undefined) return undefined;
    mtimeMs = t.ms;
    mtimePrecision = t.precision;
  }
  const entry: ParsedEntry = {
    name,
    type,
    sizeBytes: type === 'dir' ? (sizeBytes ?? 0) : sizeBytes,
    mtimeMs,
    mtimePrecision,
    ...(linkTarget !== undefined ? { linkTarget } : {}),
  };
  return { entry, unique: facts.get('unique') };
}

/** Parses an MLSD reply body. */
export function parseMlsd(text: string): ParsedListing {
  const parsed: MlsdLine[] = [];
  const unparsed: string[] = [];
  let lineCount = 0;
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue;
    lineCount++;
    const r = line.length > MAX_LINE_CHARS ? undefined : parseMlsdLine(line);
    if (r === IGNORED) continue;
    if (r === undefined) unparsed.push(line);
    else parsed.push(r);
  }
  return { entries: resolveLinkTargets(parsed), unparsed, lineCount };
}

/**
 * `OS.unix=symlink` names no target; servers that use it list the target too, with the same
 * `unique` fact (pure-ftpd lists it by its absolute path). The link takes that name as its target,
 * and an absolute-path target line, which is no entry of this directory, is dropped.
 */
function resolveLinkTargets(lines: MlsdLine[]): ParsedEntry[] {
  const byUnique = new Map<string, MlsdLine[]>();
  for (const l of lines) {
    if (l.unique === undefined) continue;
    const group = byUnique.get(l.unique) ?? [];
    group.push(l);
    byUnique.set(l.unique, group);
  }
  const dropped = new Set<MlsdLine>();
  const out: ParsedEntry[] = [];
  for (const l of lines) {
    if (l.entry.type !== 'link' || l.entry.linkTarget !== undefined || l.unique === undefined) continue;
    const targets = (byUnique.get(l.unique) ?? []).filter((t) => t.entry.type !== 'link');
    if (targets.length !== 1 || targets[0] === undefined) continue;
    const target = targets[0];
    (l as { entry: ParsedEntry }).entry = { ...l.entry, linkTarget: target.entry.name };
    if (target.entry.name.startsWith('/')) dropped.add(target);
  }
  for (const l of lines) if (!dropped.has(l)) out.push(l.entry);
  return out;
}

/** `YYYYMMDDHHMMSS[.sss]` in UTC, as in MLSD `modify` facts and MDTM replies. */
export function parseMlsdTime(text: string): { ms: number; precision: MtimePrecision } | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?$/.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac] = m;
  if (!isValidDateTime(Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s)) || Number(h) === 24)
    return undefined;
  const ms = frac !== undefined ? Math.floor(Number(`0.${frac}`) * 1000) : 0;
  const value = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Math.min(Number(s), 59), ms);
  if (!Number.isFinite(value)) return undefined;
  return { ms: value, precision: frac !== undefined ? 'ms' : 's' };
}

export type { LineResult };
