/**
 * Calendar checks and month names for listing dates. A date that does not exist (`Aug 36`,
 * month 25, `12:99`) is refused, never rolled over into another day.
 */
import type { MtimePrecision } from '../../source.js';
import type { ZoneConverter } from './zone.js';

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 && leap ? 29 : (DAYS[month - 1] ?? 0);
}

/** True when the wall-clock time exists (24:00 is accepted as the end of the day, as ls shows it). */
export function isValidDateTime(y: number, mo: number, d: number, h = 0, mi = 0, s = 0): boolean {
  if (!Number.isInteger(y) || y < 1000 || y > 9999) return false;
  if (!Number.isInteger(mo) || mo < 1 || mo > 12) return false;
  if (!Number.isInteger(d) || d < 1 || d > daysInMonth(y, mo)) return false;
  if (h === 24) return mi === 0 && s === 0;
  return h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && s >= 0 && s <= 60;
}

/**
 * Month names and abbreviations as localized `ls` and FTP servers write them: English, German,
 * French, Spanish, Italian, Dutch, Portuguese, Swedish, Russian, Hungarian, plus the VMS/French
 * `JUI`. No spelling maps to different months in two languages, so one table serves all.
 */
const NAMES_BY_MONTH: readonly (readonly string[])[] = [
  [
    'jan',
    'january',
    'januar',
    'janv',
    'janvier',
    'ene',
    'enero',
    'gen',
    'gennaio',
    'januari',
    'janeiro',
    'янв',
    'январь',
    'января',
    'jän',
    'jänner',
  ],
  [
    'feb',
    'february',
    'februar',
    'févr',
    'fév',
    'fevr',
    'février',
    'febrero',
    'febbraio',
    'februari',
    'fev',
    'fevereiro',
    'фев',
    'февраль',
    'февраля',
    'febr',
  ],
  [
    'mar',
    'march',
    'mär',
    'märz',
    'mrz',
    'mars',
    'marzo',
    'mrt',
    'maart',
    'março',
    'marco',
    'мар',
    'март',
    'марта',
    'márc',
    'marc',
  ],
  ['apr', 'april', 'avr', 'avril', 'abr', 'abril', 'aprile', 'апр', 'апрель', 'апреля', 'ápr'],
  ['may', 'mai', 'mayo', 'mag', 'maggio', 'mei', 'maio', 'maj', 'май', 'мая', 'máj'],
  ['jun', 'june', 'juni', 'juin', 'junio', 'giu', 'giugno', 'junho', 'июн', 'июнь', 'июня', 'jún'],
  ['jul', 'july', 'juli', 'juil', 'juillet', 'jui', 'julio', 'lug', 'luglio', 'julho', 'июл', 'июль', 'июля', 'júl'],
  ['aug', 'august', 'août', 'aoû', 'aout', 'ago', 'agosto', 'augusti', 'авг', 'август', 'августа', 'aug.'],
  [
    'sep',
    'sept',
    'september',
    'septembre',
    'sep.',
    'set',
    'septiembre',
    'settembre',
    'setembro',
    'сен',
    'сент',
    'сентябрь',
    'сентября',
    'szept',
  ],
  [
    'oct',
    'october',
    'okt',
    'oktober',
    'octobre',
    'octubre',
    'ott',
    'ottobre',
    'out',
    'outubro',
    'окт',
    'октябрь',
    'октября',
  ],
  ['nov', 'november', 'novembre', 'noviembre', 'novembro', 'ноя', 'нояб', 'ноябрь', 'ноября'],
  [
    'dec',
    'december',
    'dez',
    'dezember',
    'déc',
    'dec.',
    'décembre',
    'dic',
    'diciembre',
    'dicembre',
    'dezembro',
    'дек',
    'декабрь',
    'декабря',
  ],
];

const MONTH_NAMES: Readonly<Record<string, number>> = Object.fromEntries(
  NAMES_BY_MONTH.flatMap((names, i) => names.map((name) => [name, i + 1])),
);

/** The month (1-12) a token names (`Oct`, `okt.`, `Juli,`, `3月`, `1월`), or undefined. */
export function monthOf(token: string): number | undefined {
  const code = token.charCodeAt(0);
  const cjk = code >= 48 && code <= 57 ? /^(\d{1,2})(?:月|월)$/.exec(token) : null;
  if (cjk) {
    const m = Number(cjk[1]);
    return m >= 1 && m <= 12 ? m : undefined;
  }
  let end = token.length;
  while (end > 0 && (token[end - 1] === '.' || token[end - 1] === ',')) end--;
  if (end < 3 || end > 10) return undefined;
  return MONTH_NAMES[(end === token.length ? token : token.slice(0, end)).toLowerCase()];
}

/** A parsed date with its precision; the year may be missing (Unix `Mon DD HH:MM`). */
export interface ListedTime {
  year: number | undefined;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  precision: MtimePrecision;
}

/**
 * A year-less date up to this far ahead of "now" still counts as this year: server and client
 * clocks and zones disagree a little. Beyond it, the date is last year's.
 */
const FUTURE_TOLERANCE_MS = 24 * 60 * 60 * 1000;

/**
 * The UTC instant of a listed time, or undefined when the date does not exist. A year-less date
 * takes the latest year that does not put it in the future (and, for 29 February, a leap year).
 */
export function resolveTime(t: ListedTime, zone: ZoneConverter, nowMs: number): number | undefined {
  const at = (year: number): number | undefined => {
    if (!isValidDateTime(year, t.month, t.day, t.hour, t.minute, t.second)) return undefined;
    const ms = zone.toUtcMs(year, t.month, t.day, t.hour, t.minute, Math.min(t.second, 59));
    return Number.isFinite(ms) ? ms : undefined;
  };
  if (t.year !== undefined) return at(t.year);
  for (let year = zone.nowYear; year >= zone.nowYear - 8; year--) {
    const ms = at(year);
    if (ms !== undefined && ms <= nowMs + FUTURE_TOLERANCE_MS) return ms;
  }
  return undefined;
}

/**
 * A two-digit year as the latest year ending in those digits that is not after next year: IIS and
 * OS/400 write `97` for 1997 and `09` for 2009.
 */
export function fullYear(twoDigits: number, nowYear: number): number {
  let year = Math.floor(nowYear / 100) * 100 + twoDigits;
  while (year > nowYear + 1) year -= 100;
  return year;
}
