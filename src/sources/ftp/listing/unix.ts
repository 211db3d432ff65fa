/**
 * `ls -l` shapes: type and permissions, (links, owner, group: any may be missing), size, date,
 * name. Dates in English or localized month names (`26. Juli, 20:10`, `23 май 2011`, `3月 2日`),
 * day-first or month-first, ISO (`--time-style=long-iso|full-iso`), and the numeric variants
 * FileZilla's peers meet. Also Netware (`d [RWCEAFMS] owner ...`) and NetPresenz (`folder`).
 *
 * The line is read as tokens, keeping their offsets, so the name is cut from the line exactly as
 * sent: one blank after the time, and one more after a left-aligned year (`2005  name`), as `ls`
 * pads them. A size that is not an exact byte count (`33.5k`, a group name run into the digits)
 * is left unknown for the lister to ask by SIZE; a date that does not exist refuses the line.
 */
import type { EntryType, MtimePrecision } from '../../source.js';
import { fullYear, isValidDateTime, type ListedTime, monthOf, resolveTime } from './calendar.js';
import { IGNORED, type LineResult, parseSize } from './types.js';
import type { ZoneConverter } from './zone.js';

interface Token {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

function tokenize(line: string): Token[] {
  const out: Token[] = [];
  let start = -1;
  for (let i = 0; i <= line.length; i++) {
    const c = i < line.length ? line.charCodeAt(i) : 32;
    const blank = c === 32 || c === 9 || c === 13 || c === 10 || c === 11 || c === 12;
    if (blank) {
      if (start >= 0) out.push({ text: line.slice(start, i), start, end: i });
      start = -1;
    } else if (start < 0) start = i;
  }
  return out;
}

/** Type, three permission triplets, an ACL/xattr mark, and link counts some servers run into it. */
const MODE = /^([-dlfa])(?:[-rR][-wW][-xsStTlL]){3}[+.@]?\d*$/;
const NETWARE_TYPE = /^[-d]$/;
const NETWARE_RIGHTS = /^\[[-RWCEAFMS]{8}\]$/;

/** A date found in the tokens: where it ends and what it says. */
interface FoundDate {
  readonly last: number;
  readonly time: ListedTime | undefined;
  /** The date ended on a year preceded by a single blank: `ls` left-aligned it and padded after. */
  readonly leftAlignedYear: boolean;
  /** A date-only column (`2004.07.15`): servers that write it pad the name column after it. */
  readonly padded?: boolean;
  /** Day and month both 12 or less in a numeric date: which is which cannot be told. */
  readonly ambiguous?: boolean;
  /** `full-iso` offset of the listed time from UTC, ms. */
  readonly offsetMs?: number;
}

const CLOCK = /^(\d{1,2}):(\d{1,2})(?::(\d{2}))?$/;
const YEAR = /^(\d{4})(?:年|년)?$/;
const DAY = /^(\d{1,2})(?:日|일|,)?$/;

function clockOrYear(
  token: Token | undefined,
): Pick<ListedTime, 'year' | 'hour' | 'minute' | 'second' | 'precision'> | undefined {
  if (token === undefined) return undefined;
  const c = CLOCK.exec(token.text);
  if (c) {
    return {
      year: undefined,
      hour: Number(c[1]),
      minute: Number(c[2]),
      second: c[3] !== undefined ? Number(c[3]) : 0,
      precision: c[3] !== undefined ? 's' : 'minute',
    };
  }
  const y = YEAR.exec(token.text);
  if (y) return { year: Number(y[1]), hour: 0, minute: 0, second: 0, precision: 'day' };
  return undefined;
}

/** Dates that start with the month: `Nov 22 05:16`, `Oct 08, 2002 09:47`, `3月 2日 15:13`. */
function monthFirstDate(
  t: readonly Token[],
  i: number,
  a: Token,
  b: Token | undefined,
  c: Token | undefined,
): FoundDate | undefined {
  const monthA = monthOf(a.text);
  if (monthA === undefined) return undefined;
  // "Oct 08, 2002 09:47" (VShell): month, day with a comma, year, time.
  if (b !== undefined && /^\d{1,2},$/.test(b.text) && c !== undefined && /^\d{4}$/.test(c.text)) {
    const clock = CLOCK.exec(t[i + 3]?.text ?? '');
    if (clock) {
      return {
        last: i + 3,
        leftAlignedYear: false,
        time: {
          year: Number(c.text),
          month: monthA,
          day: Number.parseInt(b.text, 10),
          hour: Number(clock[1]),
          minute: Number(clock[2]),
          second: 0,
          precision: 'minute',
        },
      };
    }
  }
  // "Nov 22 05:16", "Nov 22  2025", "okt. 2 2003", "3月 2日 15:13", "6月 3日 2003年".
  if (b !== undefined && DAY.test(b.text) && !b.text.endsWith(',')) {
    const rest = clockOrYear(c);
    if (rest)
      return {
        last: i + 2,
        leftAlignedYear: leftAligned(c, b),
        time: { ...rest, month: monthA, day: Number.parseInt(b.text, 10) },
      };
  }
  return undefined;
}

/** A year right after the previous token (one blank): `Feb 18 2005  name` (left-aligned year). */
function leftAligned(tok: Token | undefined, prev: Token | undefined): boolean {
  return tok !== undefined && prev !== undefined && YEAR.test(tok.text) && tok.start - prev.end === 1;
}

/** Tries every date shape at token `i`; undefined when none fits there. */
function dateAt(t: readonly Token[], i: number, nowYear: number): FoundDate | undefined {
  const a = t[i];
  if (a === undefined) return undefined;
  const code = a.text.charCodeAt(0);
  const digitFirst = code >= 48 && code <= 57;
  // Month names start with a letter; CJK months ("3月") with a digit and end in their marker.
  if (!digitFirst || a.text.endsWith('月') || a.text.endsWith('월')) {
    return monthFirstDate(t, i, a, t[i + 1], t[i + 2]);
  }
  for (const shape of DIGIT_FIRST_SHAPES) {
    const found = shape(t, i, nowYear);
    if (found) return found;
  }
  return undefined;
}

/** One date shape that starts with a digit: the date found at token `i`, or undefined. */
type DateShape = (t: readonly Token[], i: number, nowYear: number) => FoundDate | undefined;

/** "29 Jul 02:27", "01 oct 2004", "26. Juli, 20:10", "2.   Okt.  2003", "23 май 2011". */
const dayFirstDate: DateShape = (t, i) => {
  const a = t[i] as Token;
  const b = t[i + 1];
  const c = t[i + 2];
  if (!/^\d{1,2}\.?$/.test(a.text) || b === undefined) return undefined;
  const monthB = monthOf(b.text);
  const rest = clockOrYear(c);
  if (monthB === undefined || /^\d/.test(b.text) || !rest) return undefined;
  return {
    last: i + 2,
    leftAlignedYear: leftAligned(c, b),
    time: { ...rest, month: monthB, day: Number.parseInt(a.text, 10) },
  };
};

/** "2005년 1월 6일" (year first, day precision) with an optional time after. */
const yearFirstDate: DateShape = (t, i) => {
  const yearFirst = /^(\d{4})(?:년|年)$/.exec((t[i] as Token).text);
  const b = t[i + 1];
  const c = t[i + 2];
  if (!yearFirst || b === undefined || c === undefined) return undefined;
  const month = monthOf(b.text);
  if (month === undefined || !DAY.test(c.text)) return undefined;
  const clock = CLOCK.exec(t[i + 3]?.text ?? '');
  const hasClock = clock !== null;
  return {
    last: hasClock ? i + 3 : i + 2,
    leftAlignedYear: false,
    time: {
      year: Number(yearFirst[1]),
      month,
      day: Number.parseInt(c.text, 10),
      hour: hasClock ? Number(clock[1]) : 0,
      minute: hasClock ? Number(clock[2]) : 0,
      second: 0,
      precision: hasClock ? 'minute' : 'day',
    },
  };
};

/** ISO: "2025-11-22 05:16", "2025-11-22 05:16:33.123456789 +0100". */
const isoDate: DateShape = (t, i) => {
  const iso = /^(\d{4})-(\d{2})-(\d{2})$/.exec((t[i] as Token).text);
  const b = t[i + 1];
  if (!iso || b === undefined) return undefined;
  const clock = /^(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?$/.exec(b.text);
  if (!clock) return undefined;
  const zone = clock[3] !== undefined ? /^([+-])(\d{2})(\d{2})$/.exec(t[i + 2]?.text ?? '') : null;
  const time: ListedTime = {
    year: Number(iso[1]),
    month: Number(iso[2]),
    day: Number(iso[3]),
    hour: Number(clock[1]),
    minute: Number(clock[2]),
    second: clock[3] !== undefined ? Number(clock[3]) : 0,
    precision: clock[3] !== undefined ? 's' : 'minute',
  };
  if (!zone) return { last: i + 1, leftAlignedYear: false, time };
  const offsetMs = (Number(zone[2]) * 60 + Number(zone[3])) * 60_000 * (zone[1] === '-' ? -1 : 1);
  return { last: i + 2, leftAlignedYear: false, time, offsetMs };
};

/** "1999/10/12 17:12", "24-04-2003 17:12", "2004.07.15" (day precision without a time). */
const numericDate: DateShape = (t, i) => {
  const text = (t[i] as Token).text;
  const ymd = /^(\d{4})[/.](\d{2})[/.](\d{2})$/.exec(text);
  const dmy = /^(\d{2})-(\d{2})-(\d{4})$/.exec(text);
  if (!ymd && !dmy) return undefined;
  const [y, mo, d] = ymd ? [ymd[1], ymd[2], ymd[3]] : [dmy?.[3], dmy?.[2], dmy?.[1]];
  const clock = CLOCK.exec(t[i + 1]?.text ?? '');
  const base = { year: Number(y), month: Number(mo), day: Number(d) };
  const ambiguous = dmy !== null && isAmbiguous(Number(mo), Number(d));
  if (clock)
    return {
      last: i + 1,
      leftAlignedYear: false,
      ambiguous,
      time: { ...base, hour: Number(clock[1]), minute: Number(clock[2]), second: 0, precision: 'minute' },
    };
  return {
    last: i,
    leftAlignedYear: false,
    padded: true,
    ambiguous,
    time: { ...base, hour: 0, minute: 0, second: 0, precision: 'day' },
  };
};

/** "09-26 2000", "09-26 13:45". */
const monthDayDate: DateShape = (t, i) => {
  const a = t[i] as Token;
  const md = /^(\d{2})-(\d{2})$/.exec(a.text);
  const rest = md ? clockOrYear(t[i + 1]) : undefined;
  if (!md || !rest) return undefined;
  return {
    last: i + 1,
    leftAlignedYear: leftAligned(t[i + 1], a),
    ambiguous: isAmbiguous(Number(md[1]), Number(md[2])),
    time: { ...rest, month: Number(md[1]), day: Number(md[2]) },
  };
};

/** "01-jun-99": day, month name and a two-digit year in one token. */
const dayMonYearDate: DateShape = (t, i, nowYear) => {
  const dMonY = /^(\d{1,2})-([a-z]{3})-(\d{2})$/i.exec((t[i] as Token).text);
  const month = dMonY ? monthOf(dMonY[2] ?? '') : undefined;
  if (!dMonY || month === undefined) return undefined;
  const year = fullYear(Number(dMonY[3]), nowYear);
  return {
    last: i,
    leftAlignedYear: false,
    time: { year, month, day: Number(dMonY[1]), hour: 0, minute: 0, second: 0, precision: 'day' },
  };
};

/** "3 29 03:26": numeric month and day before a time (FileZilla's peers meet it). */
const numericMonthDayClock: DateShape = (t, i) => {
  const a = t[i] as Token;
  const b = t[i + 1];
  const c = t[i + 2];
  if (!/^\d{1,2}$/.test(a.text) || b === undefined || !/^\d{1,2}$/.test(b.text) || c === undefined) {
    return undefined;
  }
  const clock = CLOCK.exec(c.text);
  const month = Number(a.text);
  if (!clock || month < 1 || month > 12) return undefined;
  return {
    last: i + 2,
    leftAlignedYear: false,
    ambiguous: isAmbiguous(month, Number(b.text)),
    time: {
      year: undefined,
      month,
      day: Number(b.text),
      hour: Number(clock[1]),
      minute: Number(clock[2]),
      second: 0,
      precision: 'minute',
    },
  };
};

/** The digit-first shapes in the order they are tried: the first that fits wins. */
const DIGIT_FIRST_SHAPES: readonly DateShape[] = [
  dayFirstDate,
  yearFirstDate,
  isoDate,
  numericDate,
  monthDayDate,
  dayMonYearDate,
  numericMonthDayClock,
];

/** `04-10` could be 4 October or 10 April: the time is left for the lister to ask by MDTM. */
function isAmbiguous(a: number, b: number): boolean {
  return a !== b && a >= 1 && a <= 12 && b >= 1 && b <= 12;
}

/** The size token before a date: exact digits, or a shape whose exact size the lister must ask for. */
function sizeOf(token: Token | undefined): { ok: true; size: number | undefined } | { ok: false } {
  if (token === undefined) return { ok: false };
  if (/^\d+$/.test(token.text)) {
    const size = parseSize(token.text);
    // Beyond 2^53 the number would be rounded: refuse the line rather than keep a wrong size.
    return size === undefined ? { ok: false } : { ok: true, size };
  }
  // "-528" (a server that cannot tell), "33.5k", "9.0M", "longgroup123456" (a group run into the size).
  if (/^-\d+$/.test(token.text) || /^\d+(?:\.\d+)?[kKmMgGtT]$/.test(token.text) || /^[^\d\s]\S*\d$/.test(token.text)) {
    return { ok: true, size: undefined };
  }
  return { ok: false };
}

/**
 * The common shape, `-rw-r--r-- 1 owner group 1234 Nov 22 05:16 name`, without tokenizing: a
 * listing of 100,000 lines is mostly this. Owner and group must be plain words (not month names)
 * or numbers: then no earlier token can start a date, and the result is what the token scan gives.
 */
const COMMON_LINE =
  /^([-dl])(?:[-r][-w][-xsStTlL]){3}[+.@]? +\d+ +([A-Za-z_][\w.-]*|\d+) +([A-Za-z_][\w.-]*|\d+) +(\d{1,15}) +([A-Za-z]{3}) +(\d{1,2})( +)(\d{1,2}:\d{2}|\d{4})( .*)?$/;

function parseCommonLine(line: string, zone: ZoneConverter, nowMs: number): LineResult | null {
  const m = COMMON_LINE.exec(line);
  if (m === null) return null;
  // Indexed, not destructured: destructuring a match array is several times slower in V8.
  const month = monthOf(m[5] ?? '');
  if (month === undefined || monthOf(m[2] ?? '') !== undefined || monthOf(m[3] ?? '') !== undefined) return null;
  const when = clockOrYear({ text: m[8] ?? '', start: 0, end: 0 });
  if (when === undefined) return null;
  const found: FoundDate = {
    last: 0,
    leftAlignedYear: when.year !== undefined && m[7] === ' ',
    time: {
      year: when.year,
      month,
      day: Number(m[6]),
      hour: when.hour,
      minute: when.minute,
      second: when.second,
      precision: when.precision,
    },
  };
  return unixEntry(m[9] ?? '', found, m[1] ?? '-', parseSize(m[4] ?? ''), false, zone, nowMs);
}

/** Parses one `ls -l`-shaped line. */
export function parseUnixLine(raw: string, zone: ZoneConverter, nowMs: number): LineResult {
  const common = parseCommonLine(raw, zone, nowMs);
  if (common !== null) return common;
  const line = raw.replace(/^[ \t]+/, '');
  const t = tokenize(line);
  const first = t[0];
  if (first === undefined) return undefined;
  let typeChar: string;
  let from: number;
  let netware = false;
  if (MODE.test(first.text)) {
    typeChar = first.text[0] ?? '-';
    from = 1;
  } else if (NETWARE_TYPE.test(first.text) && NETWARE_RIGHTS.test(t[1]?.text ?? '')) {
    typeChar = first.text;
    from = 2;
    netware = true;
  } else {
    return undefined;
  }
  // A link count run into the owner ("1ftp") is a broken line, not an owner called "1ftp".
  const links = t[from];
  if (links !== undefined && /^\d+\D/.test(links.text) && !/^\d+(?:\.\d+)?[kKmMgGtT]$/.test(links.text))
    return undefined;
  for (let i = from + 1; i < t.length; i++) {
    const found = dateAt(t, i, zone.nowYear);
    if (found === undefined) continue;
    const size = sizeOf(t[i - 1]);
    if (!size.ok) continue;
    const lastToken = t[found.last];
    if (lastToken === undefined) return undefined;
    return unixEntry(line.slice(lastToken.end), found, typeChar, size.size, netware, zone, nowMs);
  }
  return undefined;
}

function unixEntry(
  afterDate: string,
  found: FoundDate,
  typeChar: string,
  sizeBytes: number | undefined,
  netware: boolean,
  zone: ZoneConverter,
  nowMs: number,
): LineResult {
  if (found.time === undefined) return undefined;
  const { year, month, day, hour, minute, second } = found.time;
  let mtimeMs: number | undefined;
  if (found.offsetMs !== undefined && year !== undefined) {
    // full-iso carries its own offset: the source's zone does not apply.
    mtimeMs = isValidDateTime(year, month, day, hour, minute, second)
      ? Date.UTC(year, month - 1, day, hour, minute, second) - found.offsetMs
      : undefined;
  } else {
    mtimeMs = resolveTime(found.time, zone, nowMs);
  }
  // A date that does not exist ("Aug 36", "12:99") refuses the line: never rolled into another day.
  if (mtimeMs === undefined) return undefined;
  if (found.ambiguous) mtimeMs = undefined;
  let rest = afterDate;
  if (netware || found.padded) rest = rest.replace(/^[ \t]+/, '');
  else {
    if (rest.startsWith(' ')) rest = rest.slice(1);
    if (found.leftAlignedYear && rest.startsWith(' ')) rest = rest.slice(1);
  }
  if (rest.trim() === '') return IGNORED;
  const type: EntryType = typeChar === 'd' ? 'dir' : typeChar === 'l' ? 'link' : 'file';
  let name = rest;
  let linkTarget: string | undefined;
  const at = rest.indexOf(' -> ');
  const arrows = at < 0 ? 0 : rest.indexOf(' -> ', at + 4) < 0 ? 1 : 2;
  if (type === 'link' && arrows === 1) {
    name = rest.slice(0, at);
    linkTarget = rest.slice(at + 4);
  } else if (arrows > 0) {
    // "a -> b" on a directory or "a -> b -> c": which part is the name cannot be told.
    return undefined;
  }
  if (name === '.' || name === '..') return IGNORED;
  const precision: MtimePrecision = found.time.precision;
  const entry = { name, type, sizeBytes, mtimeMs, mtimePrecision: precision };
  return linkTarget !== undefined ? { ...entry, linkTarget } : entry;
}
