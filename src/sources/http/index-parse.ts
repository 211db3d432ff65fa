/**
 * Directory index pages of web servers, parsed into entries. Pure: text in, entries out.
 *
 * One link-driven parser covers the common servers: nginx autoindex (HTML, and JSON with
 * `autoindex_format json`), Apache mod_autoindex (fancy, HTML table or `<pre>`, and plain lists),
 * lighttpd mod_dirlisting and `python3 -m http.server`. Every `<a href>` is a candidate; only a
 * link that resolves to a direct child of the listed directory on the same origin is kept, so
 * parent links, column-sort links (`?C=N;O=D`), other hosts and absolute paths elsewhere drop
 * out whatever the server. The size and date of a row are read from the text after its link.
 */
import { zonedTimeToUtcMs } from '../ftp/list-parse.js';
import type { MtimePrecision } from '../source.js';
import { decodeEntities, MONTHS } from '../text.js';

export interface IndexEntry {
  /** Decoded last path segment. */
  readonly name: string;
  readonly type: 'file' | 'dir';
  /** Bytes, when the index shows a size. */
  readonly sizeBytes?: number;
  /** True when `sizeBytes` is the exact byte count (nginx, digits only), false when abbreviated ("293K"). */
  readonly sizeExact: boolean;
  /** The size as the index abbreviates it: the byte step of its last digit (1 for exact). */
  readonly sizeStepBytes?: number;
  readonly mtimeMs?: number;
  readonly mtimePrecision?: MtimePrecision;
}

export interface IndexParseResult {
  readonly entries: IndexEntry[];
  /** Links seen but dropped (parent, query, other host, deeper path, unsafe name). */
  readonly dropped: number;
  readonly format: 'json' | 'html';
}

export interface IndexParseOptions {
  /** Absolute URL of the listed directory, ending in '/'. */
  readonly dirUrl: string;
  /** IANA zone of the dates in the page (UTC for nginx). */
  readonly timezone: string;
}

/** Most links read from one page: a hostile page cannot make the poller hold millions. */
export const MAX_INDEX_LINKS = 200_000;

export function parseIndex(body: string, opts: IndexParseOptions): IndexParseResult {
  const trimmed = body.trimStart();
  if (trimmed.startsWith('[')) return parseNginxJson(trimmed);
  return parseHtmlIndex(body, opts);
}

interface NginxJsonItem {
  name?: unknown;
  type?: unknown;
  mtime?: unknown;
  size?: unknown;
}

/** nginx `autoindex_format json`: exact sizes, RFC 1123 times (always GMT). */
function parseNginxJson(text: string): IndexParseResult {
  let items: unknown;
  try {
    items = JSON.parse(text);
  } catch {
    return { entries: [], dropped: 0, format: 'json' };
  }
  const entries: IndexEntry[] = [];
  let dropped = 0;
  if (!Array.isArray(items)) return { entries, dropped, format: 'json' };
  for (const raw of items.slice(0, MAX_INDEX_LINKS) as NginxJsonItem[]) {
    const name = typeof raw?.name === 'string' ? raw.name : '';
    if (!isSafeName(name)) {
      dropped++;
      continue;
    }
    const mtimeMs = typeof raw.mtime === 'string' ? Date.parse(raw.mtime) : Number.NaN;
    const isDir = raw.type === 'directory';
    if (!isDir && raw.type !== 'file') {
      dropped++;
      continue;
    }
    entries.push({
      name,
      type: isDir ? 'dir' : 'file',
      ...(typeof raw.size === 'number' && { sizeBytes: raw.size, sizeStepBytes: 1 }),
      sizeExact: typeof raw.size === 'number',
      ...(Number.isFinite(mtimeMs) && { mtimeMs, mtimePrecision: 's' as const }),
    });
  }
  return { entries, dropped, format: 'json' };
}

const LINK = /<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>/gi;

function parseHtmlIndex(html: string, opts: IndexParseOptions): IndexParseResult {
  const base = new URL(opts.dirUrl);
  const entries: IndexEntry[] = [];
  const seen = new Set<string>();
  let dropped = 0;
  const links = [...html.matchAll(LINK)].slice(0, MAX_INDEX_LINKS);
  for (let i = 0; i < links.length; i++) {
    const m = links[i] as RegExpMatchArray;
    const href = decodeEntities(m[1] ?? m[2] ?? m[3] ?? '');
    const child = childOf(href, base);
    if (child === undefined) {
      dropped++;
      continue;
    }
    if (seen.has(child.name)) continue;
    seen.add(child.name);
    // The row's text: from this link to the next one (or the end of the row).
    const start = (m.index ?? 0) + m[0].length;
    const next = links[i + 1]?.index ?? html.length;
    const row = stripTags(html.slice(start, Math.min(next, start + 2_000)));
    const meta = parseRowMeta(row, opts.timezone);
    entries.push({
      name: child.name,
      type: child.dir ? 'dir' : 'file',
      ...(meta.mtimeMs !== undefined && { mtimeMs: meta.mtimeMs, mtimePrecision: meta.precision }),
      ...(!child.dir && meta.sizeBytes !== undefined && { sizeBytes: meta.sizeBytes, sizeStepBytes: meta.stepBytes }),
      sizeExact: !child.dir && meta.sizeExact,
    });
  }
  return { entries, dropped, format: 'html' };
}

/** The decoded name of a link that points at a direct child of `base`, or undefined. */
function childOf(href: string, base: URL): { name: string; dir: boolean } | undefined {
  if (href === '' || href.includes('?') || href.startsWith('#')) return undefined;
  let url: URL;
  try {
    url = new URL(href, base);
  } catch {
    return undefined;
  }
  if (url.origin !== base.origin || url.search !== '' || url.hash !== '') return undefined;
  if (!url.pathname.startsWith(base.pathname)) return undefined;
  const rest = url.pathname.slice(base.pathname.length);
  const dir = rest.endsWith('/');
  const segment = dir ? rest.slice(0, -1) : rest;
  if (segment === '' || segment.includes('/')) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  return isSafeName(name) ? { name, dir } : undefined;
}

/** A single path segment we can use as a remote name. */
function isSafeName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\u0000]/.test(name);
}

interface RowMeta {
  mtimeMs?: number;
  precision?: MtimePrecision;
  sizeBytes?: number;
  stepBytes?: number;
  sizeExact: boolean;
}

// nginx and old Apache: 23-Nov-2026 10:05; Apache 2.4: 2026-11-23 10:05; lighttpd: 2026-Nov-23 10:05:00.
const DATE_DMY = /(\d{1,2})-([A-Za-z]{3})-(\d{4})\s+(\d{2}):(\d{2})(?::(\d{2}))?/;
const DATE_YMD = /(\d{4})-(\d{2}|[A-Za-z]{3})-(\d{2})\s+(\d{2}):(\d{2})(?::(\d{2}))?/;
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]i?B?|B)?\s*(?:\s|$)/i;
const UNIT: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };

function parseRowMeta(row: string, timezone: string): RowMeta {
  const text = row.replace(/\u00a0/g, ' ');
  let rest = text;
  const meta: RowMeta = { sizeExact: false };
  const dmy = DATE_DMY.exec(text);
  const ymd = dmy ? undefined : DATE_YMD.exec(text);
  const d = dmy ?? ymd;
  if (d) {
    const [y, mo, day] = dmy
      ? [Number(dmy[3]), MONTHS[(dmy[2] as string).toLowerCase()], Number(dmy[1])]
      : [Number(d[1]), /\d/.test(d[2] as string) ? Number(d[2]) : MONTHS[(d[2] as string).toLowerCase()], Number(d[3])];
    const sec = d[6];
    if (mo !== undefined) {
      meta.mtimeMs = zonedTimeToUtcMs(y, mo, day, Number(d[4]), Number(d[5]), sec ? Number(sec) : 0, timezone);
      meta.precision = sec ? 's' : 'minute';
    }
    rest = text.slice((d.index ?? 0) + d[0].length);
  }
  const s = SIZE.exec(rest);
  if (s) {
    const digits = s[1] as string;
    const unitKey = (s[2] ?? '').charAt(0).toUpperCase();
    const unit = UNIT[unitKey === 'B' ? 'B' : unitKey] ?? 1;
    const decimals = digits.includes('.') ? (digits.split('.')[1] as string).length : 0;
    meta.sizeBytes = Math.round(Number(digits) * unit);
    meta.sizeExact = unit === 1 && decimals === 0;
    meta.stepBytes = meta.sizeExact ? 1 : Math.max(1, Math.round(unit / 10 ** decimals));
  }
  return meta;
}

function stripTags(html: string): string {
  return decodeEntities(html.replace(/<[^>]*>/g, ' '));
}

/**
 * Whether a version the ledger already has agrees with what an abbreviated index row shows
 * (same minute or second, size within the row's rounding): then it needs no HEAD.
 */
export function agreesWithIndex(
  known: { sizeBytes: number; mtimeMs: number },
  row: Pick<IndexEntry, 'sizeBytes' | 'sizeStepBytes' | 'mtimeMs' | 'mtimePrecision'>,
): boolean {
  if (row.mtimeMs !== undefined) {
    const unit = row.mtimePrecision === 'minute' ? 60_000 : 1000;
    if (known.mtimeMs < row.mtimeMs || known.mtimeMs >= row.mtimeMs + unit) return false;
  }
  if (row.sizeBytes !== undefined) {
    const step = row.sizeStepBytes ?? 1;
    if (Math.abs(known.sizeBytes - row.sizeBytes) > step) return false;
  }
  return true;
}
