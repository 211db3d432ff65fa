/**
 * IBM i (OS/400) listings: `OWNER  SIZE  DATE TIME  *TYPE  name`, and `OWNER  *MEM  FILE/MEMBER`.
 * The date is in the job's format: `DD.MM.YY`, or `MM/DD/YY` or `DD/MM/YY`, which only a listing
 * with a day above 12 tells apart (see {@link os400DateOrder}); where it cannot, the time is left
 * unknown for the lister to ask by MDTM. Only stream files (`*STMF`) list their size in bytes.
 */
import { fullYear, type ListedTime, resolveTime } from './calendar.js';
import type { DateOrder } from './dos.js';
import { IGNORED, type LineResult, parseSize } from './types.js';
import type { ZoneConverter } from './zone.js';

const OBJECT_LINE = /^(\S+)\s+(\d+)\s+(\d{2})([/.])(\d{2})\4(\d{2})\s+(\d{2}):(\d{2}):(\d{2})\s+(\*[A-Z]+)\s+(\S.*)$/;
const MEMBER_LINE = /^(\S+)\s+(\*MEM)\s+(\S.*)$/;
const DIR_TYPES = new Set(['*DIR', '*LIB', '*FLR']);
const FILE_TYPES = new Set(['*STMF', '*FILE', '*MEM', '*DOC']);

/** The order of a listing's slash dates, or undefined when none of them tells. */
export function os400DateOrder(lines: readonly string[]): DateOrder | undefined {
  let dayFirst = 0;
  let monthFirst = 0;
  for (const line of lines) {
    const m = OBJECT_LINE.exec(line);
    if (m?.[4] !== '/') continue;
    if (Number(m[3]) > 12) dayFirst++;
    else if (Number(m[5]) > 12) monthFirst++;
  }
  if (dayFirst > 0 && monthFirst === 0) return 'dmy';
  if (monthFirst > 0 && dayFirst === 0) return 'mdy';
  return undefined;
}

export function parseOs400Line(
  line: string,
  orderOf: () => DateOrder | undefined,
  zone: ZoneConverter,
  nowMs: number,
): LineResult {
  const member = MEMBER_LINE.exec(line);
  if (member) {
    const name = (member[3] ?? '').trim();
    return name === ''
      ? IGNORED
      : { name, type: 'file', sizeBytes: undefined, mtimeMs: undefined, mtimePrecision: 's' };
  }
  const m = OBJECT_LINE.exec(line);
  if (!m) return undefined;
  const [, , size, a, sep, b, yy, h, mi, s, kind, rawName] = m;
  const isDir = DIR_TYPES.has(kind ?? '');
  if (!isDir && !FILE_TYPES.has(kind ?? '')) return undefined;
  const fieldOrder = sep === '.' ? 'dmy' : orderOf();
  let mtimeMs: number | undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  if (fieldOrder !== undefined) {
    const [month, day] = fieldOrder === 'dmy' ? [Number(b), Number(a)] : [Number(a), Number(b)];
    const time: ListedTime = {
      year: fullYear(Number(yy), zone.nowYear),
      month,
      day,
      hour: Number(h),
      minute: Number(mi),
      second: Number(s),
      precision: 's',
    };
    mtimeMs = resolveTime(time, zone, nowMs);
    if (mtimeMs === undefined) return undefined;
  }
  const name = (rawName ?? '').trim().replace(/\/$/, '');
  if (name === '') return IGNORED;
  return {
    name,
    type: isDir ? 'dir' : 'file',
    sizeBytes: kind === '*STMF' ? parseSize(size ?? '') : isDir ? 0 : undefined,
    mtimeMs,
    mtimePrecision: 's',
  };
}
