/**
 * Pure parsers for FTP directory listings: MLSD (RFC 3659) and the LIST formats seen in the
 * field (Unix `ls -l`, `ls -l --time-style=long-iso`, DOS/IIS). No I/O, no clock: `nowMs` is passed in.
 */
import type { EntryType, MtimePrecision } from '../source.js';
import { MONTHS } from '../text.js';

/** One parsed listing line. `name` is the last path segment as the server sent it. */
export interface ParsedEntry {
  readonly name: string;
  readonly type: EntryType;
  readonly sizeBytes: number;
  readonly mtimeMs: number;
  readonly mtimePrecision: MtimePrecision;
  /** Symlink target when the server shows one (`name -> target`). */
  readonly linkTarget?: string;
}

export interface ParsedListing {
  readonly entries: ParsedEntry[];
  /** Lines that matched no known format; the caller logs them, parsing never fails. */
  readonly unparsed: string[];
  /**
   * Entry lines the server sent, `.`/`..` (and MLSD cdir/pdir) and unparsed lines included,
   * `total` lines excluded: the count to compare with a server's listing cap, which counts them too.
   */
  readonly lineCount: number;
}

export interface ParseListOptions {
  /** IANA zone the server writes LIST times in. MLSD times are always UTC (RFC 3659). */
  timezone: string;
  /** "Now" for choosing the year of year-less Unix dates. */
  nowMs: number;
}

/**
 * A year-less date up to this far ahead of "now" still counts as this year: server and client
 * clocks and zones disagree a little. Beyond it, the date is last year's.
 */
const FUTURE_TOLERANCE_MS = 24 * 60 * 60 * 1000;

// `ls -l`: type+perms, then (links, owner, group: any of them may be missing), size, "Mon DD HH:MM|YYYY", name.
// The lazy middle group makes the first "size month day time" run after the permissions win,
// so a name that itself looks like a date does not confuse the parse.
const UNIX_LINE =
  /^([-dlbcpsDn])([-rwxsStTlL]{9})\S*\s+(.*?)(\d{1,20})\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})\s+(\d{1,2}:\d{2}(?::\d{2})?|\d{4})\s(.*)$/i;

// `ls -l --time-style=long-iso|full-iso`: "2025-11-22 05:16" or "2025-11-22 05:16:33.123456789 +0100".
const ISO_LINE =
  /^([-dlbcpsDn])([-rwxsStTlL]{9})\S*\s+(.*?)(\d{1,20})\s+(\d{4})-(\d{2})-(\d{2})\s+(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:\s+([+-])(\d{2})(\d{2}))?\s(.*)$/;

// DOS/IIS: "11-22-25  05:16AM  <DIR>  name" or "11-22-2025  17:16  1234 name".
const DOS_LINE = /^(\d{2})-(\d{2})-(\d{2}|\d{4})\s+(\d{1,2}):(\d{2})\s*([AaPp][Mm])?\s+(<DIR>|\d+)\s+(.*)$/;

/** Parses an MLSD reply body: `fact=value;...; name` per line. */
export function parseMlsd(text: string): ParsedListing {
  const entries: ParsedEntry[] = [];
  const unparsed: string[] = [];
  let lineCount = 0;
  for (const line of splitLines(text)) {
    if (isOverlong(line)) {
      lineCount++;
      unparsed.push(line);
      continue;
    }
    const cut = line.indexOf('; ');
    const factText = cut >= 0 ? line.slice(0, cut) : line.startsWith(' ') ? '' : undefined;
    const name = cut >= 0 ? line.slice(cut + 2) : line.slice(1);
    if (factText === undefined || name === '') {
      lineCount++;
      unparsed.push(line);
      continue;
    }
    const facts = new Map<string, string>();
    for (const fact of factText.split(';')) {
      const eq = fact.indexOf('=');
      if (eq > 0) facts.set(fact.slice(0, eq).toLowerCase(), fact.slice(eq + 1));
    }
    const typeFact = (facts.get('type') ?? '').toLowerCase();
    lineCount++;
    if (typeFact === 'cdir' || typeFact === 'pdir' || name === '.' || name === '..') continue;
    let type: EntryType;
    let linkTarget: string | undefined;
    if (typeFact === 'file') type = 'file';
    else if (typeFact === 'dir') type = 'dir';
    else if (typeFact.startsWith('os.unix=slink') || typeFact.startsWith('os.unix=symlink')) {
      type = 'link';
      const colon = typeFact.indexOf(':');
      // Keep the case of the target: take it from the original fact value.
      if (colon >= 0) linkTarget = (facts.get('type') ?? '').slice(colon + 1) || undefined;
    } else {
      unparsed.push(line);
      continue;
    }
    const sizeText = facts.get('size') ?? facts.get('sizd') ?? '0';
    const sizeBytes = Number.parseInt(sizeText, 10);
    const modify = facts.get('modify');
    const mtime = modify !== undefined ? parseMlsdTime(modify) : undefined;
    if (!Number.isFinite(sizeBytes) || mtime === undefined) {
      unparsed.push(line);
      continue;
    }
    entries.push({
      name,
      type,
      sizeBytes,
      mtimeMs: mtime.ms,
      mtimePrecision: mtime.precision,
      ...(linkTarget !== undefined ? { linkTarget } : {}),
    });
  }
  return { entries, unparsed, lineCount };
}

/** `YYYYMMDDHHMMSS[.sss]` in UTC, as in MLSD `modify` facts and MDTM replies. */
export function parseMlsdTime(text: string): { ms: number; precision: MtimePrecision } | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?$/.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac] = m;
  const ms = frac !== undefined ? Math.floor(Number(`0.${frac}`) * 1000) : 0;
  const value = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  if (!Number.isFinite(value)) return undefined;
  return { ms: value, precision: frac !== undefined ? 'ms' : 's' };
}

/**
 * Parses a LIST reply body in Unix, ISO or DOS format (per line, so a mixed listing works).
 * Times are read in `opts.timezone`. `total N`, `.` and `..` are dropped; other lines that match
 * no format are returned in `unparsed`.
 */
export function parseList(text: string, opts: ParseListOptions): ParsedListing {
  const entries: ParsedEntry[] = [];
  const unparsed: string[] = [];
  let lineCount = 0;
  const zone = makeZoneConverter(opts.timezone, opts.nowMs);
  for (const line of splitLines(text)) {
    if (/^total\s+\d+/i.test(line)) continue;
    const entry = isOverlong(line)
      ? undefined
      : (parseUnixLine(line, opts, zone) ?? parseIsoLine(line, zone) ?? parseDosLine(line, zone));
    if (entry === undefined) {
      lineCount++;
      unparsed.push(line);
      continue;
    }
    lineCount++;
    if (entry.name === '.' || entry.name === '..' || entry.name === '') continue;
    entries.push(entry);
  }
  return { entries, unparsed, lineCount };
}

function parseUnixLine(line: string, opts: ParseListOptions, zone: ZoneConverter): ParsedEntry | undefined {
  const m = UNIX_LINE.exec(line);
  if (!m) return undefined;
  const [, typeChar, , , size, mon, dayText, timeOrYear, rest] = m;
  const month = MONTHS[(mon ?? '').toLowerCase()] ?? 0;
  const day = Number(dayText);
  const clock = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(timeOrYear ?? '');
  if (clock === null) {
    // "Mon DD  YYYY": an old file, shown with its day only.
    const mtimeMs = zone.toUtcMs(Number(timeOrYear), month, day, 0, 0, 0);
    return unixEntry(typeChar ?? '-', size ?? '', rest ?? '', mtimeMs, 'day');
  }
  // "Mon DD HH:MM": no year shown; take the latest year that does not put the date in the future.
  const [, hh, mi, ss] = clock;
  const seconds = ss !== undefined ? Number(ss) : 0;
  let mtimeMs = zone.toUtcMs(zone.nowYear, month, day, Number(hh), Number(mi), seconds);
  if (mtimeMs > opts.nowMs + FUTURE_TOLERANCE_MS) {
    mtimeMs = zone.toUtcMs(zone.nowYear - 1, month, day, Number(hh), Number(mi), seconds);
  }
  return unixEntry(typeChar ?? '-', size ?? '', rest ?? '', mtimeMs, ss !== undefined ? 's' : 'minute');
}

function parseIsoLine(line: string, zone: ZoneConverter): ParsedEntry | undefined {
  const m = ISO_LINE.exec(line);
  if (!m) return undefined;
  const [, typeChar, , , size, y, mo, d, hh, mi, ss, sign, offH, offM, rest] = m;
  const seconds = ss !== undefined ? Number(ss) : 0;
  let mtimeMs: number;
  if (sign !== undefined) {
    const offsetMs = (Number(offH) * 60 + Number(offM)) * 60_000 * (sign === '-' ? -1 : 1);
    mtimeMs = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(hh), Number(mi), seconds) - offsetMs;
  } else {
    mtimeMs = zone.toUtcMs(Number(y), Number(mo), Number(d), Number(hh), Number(mi), seconds);
  }
  return unixEntry(typeChar ?? '-', size ?? '', rest ?? '', mtimeMs, ss !== undefined ? 's' : 'minute');
}

function unixEntry(
  typeChar: string,
  size: string,
  rest: string,
  mtimeMs: number,
  precision: MtimePrecision,
): ParsedEntry | undefined {
  if (!Number.isFinite(mtimeMs)) return undefined;
  const type: EntryType = typeChar === 'd' ? 'dir' : typeChar === 'l' ? 'link' : 'file';
  let name = rest;
  let linkTarget: string | undefined;
  if (type === 'link') {
    const arrow = rest.indexOf(' -> ');
    if (arrow >= 0) {
      name = rest.slice(0, arrow);
      linkTarget = rest.slice(arrow + 4);
    }
  }
  const sizeBytes = Number.parseInt(size, 10);
  if (!Number.isFinite(sizeBytes)) return undefined;
  return {
    name,
    type,
    sizeBytes,
    mtimeMs,
    mtimePrecision: precision,
    ...(linkTarget !== undefined ? { linkTarget } : {}),
  };
}

function parseDosLine(line: string, zone: ZoneConverter): ParsedEntry | undefined {
  const m = DOS_LINE.exec(line);
  if (!m) return undefined;
  const [, mo, d, yText, hText, mi, ampm, sizeOrDir, name] = m;
  let year = Number(yText);
  // Two-digit years: IIS writes 00-69 for 2000-2069 and 70-99 for the 1900s.
  if ((yText ?? '').length === 2) year += year < 70 ? 2000 : 1900;
  let hour = Number(hText);
  if (ampm !== undefined) {
    const pm = ampm.toLowerCase() === 'pm';
    if (hour === 12) hour = pm ? 12 : 0;
    else if (pm) hour += 12;
  }
  const mtimeMs = zone.toUtcMs(year, Number(mo), Number(d), hour, Number(mi), 0);
  if (!Number.isFinite(mtimeMs) || name === undefined) return undefined;
  const isDir = sizeOrDir === '<DIR>';
  return {
    name,
    type: isDir ? 'dir' : 'file',
    sizeBytes: isDir ? 0 : Number.parseInt(sizeOrDir ?? '0', 10),
    mtimeMs,
    mtimePrecision: 'minute',
  };
}

/**
 * No real listing line is this long (names are at most 255 bytes on common file systems); longer
 * ones are reported unparsed rather than run through the patterns, which keeps a hostile server
 * from costing us quadratic regex time.
 */
const MAX_LINE_CHARS = 8192;

function splitLines(text: string): string[] {
  return text.split(/\r?\n/).filter((line) => line.trim() !== '');
}

function isOverlong(line: string): boolean {
  return line.length > MAX_LINE_CHARS;
}

/** A listing of exactly a known default cap of entries was probably cut there (pure-ftpd: 2,000). */
export function looksTruncated(lineCount: number): boolean {
  return KNOWN_LISTING_CAPS.has(lineCount);
}

/** Default listing caps of servers in the field (pure-ftpd's -L default is 2000). */
const KNOWN_LISTING_CAPS = new Set([1000, 2000, 5000, 10_000]);

const formatterCache = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatterCache.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatterCache.set(timeZone, formatter);
  }
  return formatter;
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function zonedParts(utcMs: number, timeZone: string): WallClock {
  const wall: WallClock = { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
  for (const part of formatterFor(timeZone).formatToParts(new Date(utcMs))) {
    if (part.type === 'year' || part.type === 'month' || part.type === 'day') wall[part.type] = Number(part.value);
    else if (part.type === 'hour' || part.type === 'minute' || part.type === 'second')
      wall[part.type] = Number(part.value);
  }
  return wall;
}

function zonedYear(utcMs: number, timeZone: string): number {
  if (isUtc(timeZone)) return new Date(utcMs).getUTCFullYear();
  return zonedParts(utcMs, timeZone).year;
}

/** Offset of `timeZone` from UTC at the instant `utcMs`, in ms (east positive). */
export function zoneOffsetMs(utcMs: number, timeZone: string): number {
  if (isUtc(timeZone)) return 0;
  const p = zonedParts(utcMs, timeZone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - (utcMs - (((utcMs % 1000) + 1000) % 1000));
}

/**
 * The UTC instant of a wall-clock time in an IANA zone. In a DST gap the time is read with the
 * offset before the change; in an overlap the earlier instant wins.
 */
export function zonedTimeToUtcMs(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  timeZone: string,
): number {
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  if (!Number.isFinite(wall) || isUtc(timeZone)) return wall;
  const first = wall - zoneOffsetMs(wall, timeZone);
  const secondOffset = zoneOffsetMs(first, timeZone);
  const candidate = wall - secondOffset;
  // In an overlap both instants show this wall time: prefer the earlier one.
  const earlier = Math.min(first, candidate);
  return wall - zoneOffsetMs(earlier, timeZone) === earlier ? earlier : Math.max(first, candidate);
}

function isUtc(timeZone: string): boolean {
  return timeZone === 'UTC' || timeZone === 'Etc/UTC' || timeZone === 'GMT';
}

/** Wall-clock to UTC conversion for one listing, with the zone offsets it needed remembered. */
interface ZoneConverter {
  /** The current year in the zone, for year-less dates. */
  readonly nowYear: number;
  toUtcMs(year: number, month: number, day: number, hour: number, minute: number, second: number): number;
}

/**
 * Intl is slow (a formatToParts call per conversion): a 100k-line listing would spend seconds in
 * it. Offsets only change at DST transitions, which fall on quarter hours, so one offset per
 * wall-clock quarter hour serves every line in it.
 */
function makeZoneConverter(timeZone: string, nowMs: number): ZoneConverter {
  const offsets = new Map<string, number>();
  return {
    nowYear: zonedYear(nowMs, timeZone),
    toUtcMs(year, month, day, hour, minute, second) {
      const wall = Date.UTC(year, month - 1, day, hour, minute, second);
      if (!Number.isFinite(wall) || isUtc(timeZone)) return wall;
      const quarter = Math.floor(minute / 15) * 15;
      const key = `${year}-${month}-${day}-${hour}-${quarter}`;
      let offset = offsets.get(key);
      if (offset === undefined) {
        const slotWall = Date.UTC(year, month - 1, day, hour, quarter, 0);
        offset = slotWall - zonedTimeToUtcMs(year, month, day, hour, quarter, 0, timeZone);
        offsets.set(key, offset);
      }
      return wall - offset;
    },
  };
}

/** Throws a RangeError when `timeZone` is not an IANA zone this runtime knows. */
export function assertTimeZone(timeZone: string): void {
  new Intl.DateTimeFormat('en-US', { timeZone });
}
