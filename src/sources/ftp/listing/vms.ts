/**
 * OpenVMS (`NAME.EXT;7  12/16  2-JUN-1998 07:32:04  [GROUP,OWNER]  (RWED,RWED,RE,)`). The
 * `;7` is the file's version: the entry is `NAME.EXT` (what RETR fetches: its newest version),
 * carrying the version, and only the highest version of a name is kept (see {@link newestVersions}).
 * Sizes are in 512-byte blocks, used/allocated, or `2KB`: not a byte count, so left unknown for
 * the lister to ask by SIZE. `NAME.DIR;1` is the directory `NAME`. A long name puts the rest of its
 * entry on the next line; {@link joinVmsContinuations} puts them back together.
 */
import type { MtimePrecision } from '../../source.js';
import { type ListedTime, monthOf, resolveTime } from './calendar.js';
import { IGNORED, type LineResult, type ParsedEntry } from './types.js';
import type { ZoneConverter } from './zone.js';

const NAME_VERSION = /^([^\s;]+);(\d{1,5})$/;
const DATE = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/;
const CLOCK = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/;
/** `[GROUP,OWNER]`; some servers cut a long owner off before its bracket closes. */
const OWNER = /^\[[A-Z0-9_$,]*\]?$/i;
const PROTECTION = /^\((?:[RWED]*,){3}[RWED]*\)$/i;
const SIZE = /^(?:\d+(?:\/\d+)?|\d+[KMG]B|\*+)$/i;

/** Joins a line holding only `NAME;VER` with the indented line after it. */
export function joinVmsContinuations(lines: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const next = lines[i + 1];
    if (
      NAME_VERSION.test(line.trim()) &&
      next !== undefined &&
      /^\s+\S|^\d/.test(next) &&
      !NAME_VERSION.test(next.trim().split(/\s+/)[0] ?? '')
    ) {
      out.push(`${line.trim()} ${next.trim()}`);
      i++;
    } else {
      out.push(line);
    }
  }
  return out;
}

export function parseVmsLine(line: string, zone: ZoneConverter, nowMs: number): LineResult {
  if (/^Directory \S+$/.test(line.trim()) || /^Total of \d+ files?\b/i.test(line.trim())) return IGNORED;
  const tokens = line.trim().split(/\s+/);
  const nv = NAME_VERSION.exec(tokens[0] ?? '');
  if (!nv) return undefined;
  let time: ListedTime | undefined;
  let ownerWords = 0;
  for (let i = 1; i < tokens.length; i++) {
    const tok = tokens[i] ?? '';
    const date = DATE.exec(tok);
    if (date && time === undefined) {
      const month = monthOf(date[2] ?? '');
      if (month === undefined) return undefined;
      const clock = CLOCK.exec(tokens[i + 1] ?? '');
      let precision: MtimePrecision = 'day';
      if (clock) {
        precision = clock[3] !== undefined ? 's' : 'minute';
        i++;
      }
      time = {
        year: Number(date[3]),
        month,
        day: Number(date[1]),
        hour: clock ? Number(clock[1]) : 0,
        minute: clock ? Number(clock[2]) : 0,
        second: clock?.[3] !== undefined ? Number(clock[3]) : 0,
        precision,
      };
    } else if (SIZE.test(tok) || OWNER.test(tok) || PROTECTION.test(tok)) {
      // blocks, [owner], (protection): nothing the entry needs
    } else if (/^[A-Z0-9_$]+$/i.test(tok) && !/^[AP]M$/i.test(tok) && ownerWords === 0) {
      ownerWords++; // an owner written without brackets
    } else {
      return undefined;
    }
  }
  if (time === undefined) return undefined;
  const mtimeMs = resolveTime(time, zone, nowMs);
  if (mtimeMs === undefined) return undefined;
  const file = nv[1] ?? '';
  const isDir = /\.DIR$/i.test(file);
  return {
    name: isDir ? file.slice(0, -4) : file,
    type: isDir ? 'dir' : 'file',
    sizeBytes: isDir ? 0 : undefined,
    mtimeMs,
    mtimePrecision: time.precision,
    version: Number(nv[2]),
  };
}

/** Keeps the highest version of each VMS name; entries without a version pass through. */
export function newestVersions(entries: ParsedEntry[]): ParsedEntry[] {
  const best = new Map<string, ParsedEntry>();
  for (const e of entries) {
    if (e.version === undefined) continue;
    const key = `${e.type}\0${e.name.toUpperCase()}`;
    const seen = best.get(key);
    if (seen === undefined || (seen.version ?? 0) < e.version) best.set(key, e);
  }
  if (best.size === 0) return entries;
  const keep = new Set(best.values());
  return entries.filter((e) => e.version === undefined || keep.has(e));
}
