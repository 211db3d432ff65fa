/**
 * DOS/IIS listings (`11-22-25  05:16AM  <DIR>  name`, `2002-09-02  19:06  9,730 name`) and OS/2
 * (`1123  A  07-14-99  12:37  name`). IIS writes month-first dates unless the server's locale is
 * day-first; a listing says which when one of its dates has a day above 12 (see
 * {@link dosDateOrder}), otherwise month-first is assumed, as every peer does.
 */
import { fullYear, type ListedTime, resolveTime } from './calendar.js';
import { IGNORED, type LineResult, parseSize } from './types.js';
import type { ZoneConverter } from './zone.js';

export type DateOrder = 'mdy' | 'dmy';

const DOS_LINE =
  /^(\d{1,2})-(\d{1,2})-(\d{2}|\d{4})\s+(\d{1,2}):(\d{2})\s*([AaPp][Mm])?\s+(<DIR>|\d[\d,]*)(?:\s+(.*))?$/;
const DOS_ISO_LINE = /^(\d{4})-(\d{2})-(\d{2})\s+(\d{1,2}):(\d{2})\s+(<DIR>|\d[\d,]*)(?:\s+(.*))?$/;
const OS2_LINE = /^\s*(\d+)((?:\s+[A-Z]{1,4})*)\s+(\d{2})-(\d{2})-(\d{2,4})\s+(\d{1,2}):(\d{2})\s+(\S.*)$/;

/** The date order a DOS listing shows: day-first when some date only makes sense that way. */
export function dosDateOrder(lines: readonly string[]): DateOrder {
  let dayFirst = 0;
  let monthFirst = 0;
  for (const line of lines) {
    const m = /^(\d{1,2})-(\d{1,2})-(?:\d{2}|\d{4})\s+\d/.exec(line);
    if (!m) continue;
    if (Number(m[1]) > 12 && Number(m[2]) <= 12) dayFirst++;
    else if (Number(m[2]) > 12 && Number(m[1]) <= 12) monthFirst++;
  }
  return dayFirst > 0 && monthFirst === 0 ? 'dmy' : 'mdy';
}

function dosSize(text: string): number | undefined {
  if (!/^\d{1,3}(?:,\d{3})+$|^\d+$/.test(text)) return undefined;
  return parseSize(text.replaceAll(',', ''));
}

function clock12(hourText: string, ampm: string | undefined): number | undefined {
  const hour = Number(hourText);
  if (ampm === undefined) return hour;
  if (hour < 1 || hour > 12) return undefined;
  const pm = ampm.toLowerCase() === 'pm';
  return hour === 12 ? (pm ? 12 : 0) : pm ? hour + 12 : hour;
}

function dosEntry(
  time: ListedTime,
  sizeOrDir: string,
  nameText: string | undefined,
  zone: ZoneConverter,
  nowMs: number,
): LineResult {
  const mtimeMs = resolveTime(time, zone, nowMs);
  if (mtimeMs === undefined) return undefined;
  const isDir = sizeOrDir === '<DIR>';
  const sizeBytes = isDir ? 0 : dosSize(sizeOrDir);
  if (sizeBytes === undefined) return undefined;
  // IIS pads the name column: the name starts at its first non-blank.
  const name = (nameText ?? '').replace(/^[ \t]+/, '');
  if (name.trim() === '') return IGNORED;
  if (name === '.' || name === '..') return IGNORED;
  return { name, type: isDir ? 'dir' : 'file', sizeBytes, mtimeMs, mtimePrecision: 'minute' };
}

export function parseDosLine(line: string, orderOf: () => DateOrder, zone: ZoneConverter, nowMs: number): LineResult {
  const m = DOS_LINE.exec(line);
  if (m) {
    const order = orderOf();
    const [, a, b, yText, hText, mi, ampm, sizeOrDir, name] = m;
    const hour = clock12(hText ?? '', ampm);
    if (hour === undefined) return undefined;
    const year = (yText ?? '').length === 2 ? fullYear(Number(yText), zone.nowYear) : Number(yText);
    const [month, day] = order === 'dmy' ? [Number(b), Number(a)] : [Number(a), Number(b)];
    const time: ListedTime = { year, month, day, hour, minute: Number(mi), second: 0, precision: 'minute' };
    return dosEntry(time, sizeOrDir ?? '', name, zone, nowMs);
  }
  const iso = DOS_ISO_LINE.exec(line);
  if (iso) {
    const [, y, mo, d, h, mi, sizeOrDir, name] = iso;
    const time: ListedTime = {
      year: Number(y),
      month: Number(mo),
      day: Number(d),
      hour: Number(h),
      minute: Number(mi),
      second: 0,
      precision: 'minute',
    };
    return dosEntry(time, sizeOrDir ?? '', name, zone, nowMs);
  }
  return undefined;
}

/** OS/2: size, attribute words (`A`, `RSA`, `DIR`), `MM-DD-YY` (years past 1999 as `103`), time, name. */
export function parseOs2Line(line: string, zone: ZoneConverter, nowMs: number): LineResult {
  const m = OS2_LINE.exec(line);
  if (!m) return undefined;
  const [, size, attrs, mo, d, yText, h, mi, name] = m;
  const words = (attrs ?? '').trim().split(/\s+/).filter(Boolean);
  if (!words.every((w) => /^(?:DIR|[RSAHE]{1,4})$/.test(w))) return undefined;
  const isDir = words.includes('DIR');
  const yNum = Number(yText);
  const year =
    (yText ?? '').length === 2 ? fullYear(yNum, zone.nowYear) : (yText ?? '').length === 3 ? 1900 + yNum : yNum;
  const time: ListedTime = {
    year,
    month: Number(mo),
    day: Number(d),
    hour: Number(h),
    minute: Number(mi),
    second: 0,
    precision: 'minute',
  };
  const mtimeMs = resolveTime(time, zone, nowMs);
  const sizeBytes = parseSize(size ?? '');
  if (mtimeMs === undefined || sizeBytes === undefined) return undefined;
  const clean = (name ?? '').trimEnd() === '' ? '' : (name ?? '');
  if (clean === '' || clean === '.' || clean === '..') return IGNORED;
  return { name: clean, type: isDir ? 'dir' : 'file', sizeBytes, mtimeMs, mtimePrecision: 'minute' };
}
