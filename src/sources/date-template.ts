/**
 * Date templates in a source path: `radar/{YYYY}/{MM}/{DD}` names one directory per day, so a
 * cycle lists only the directories of the window it polls instead of walking a 5-year archive.
 * Tokens: `{YYYY}` year, `{MM}` month, `{DD}` day of month, `{JJJ}` day of year (001-366),
 * `{HH}` hour; all UTC. Pure functions, except {@link toleratingMissingDirs} which wraps a Source.
 */
import { PermanentError } from '../errors.js';
import type { Listing, Source } from './source.js';

/** The tokens and what each expands to. */
export const DATE_TOKENS = ['{YYYY}', '{MM}', '{DD}', '{JJJ}', '{HH}'] as const;

/** A window needing more directories than this is a mistake (a `--since` years back on an hourly tree). */
export const MAX_TEMPLATE_DIRS = 10_000;

const TOKEN_RE = /\{(YYYY|MM|DD|JJJ|HH)\}/g;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

type Step = 'hour' | 'day' | 'month' | 'year';

/** Does this path or glob contain a date token? */
export function hasDateTokens(text: string): boolean {
  return /\{(YYYY|MM|DD|JJJ|HH)\}/.test(text);
}

/** The finest unit a template names: `{HH}` → hour, `{DD}`/`{JJJ}` → day, `{MM}` → month, `{YYYY}` → year. */
function stepOf(template: string): Step | undefined {
  if (template.includes('{HH}')) return 'hour';
  if (template.includes('{DD}') || template.includes('{JJJ}')) return 'day';
  if (template.includes('{MM}')) return 'month';
  if (template.includes('{YYYY}')) return 'year';
  return undefined;
}

function floorTo(ms: number, step: Step): number {
  const d = new Date(ms);
  switch (step) {
    case 'hour':
      return Math.floor(ms / HOUR_MS) * HOUR_MS;
    case 'day':
      return Math.floor(ms / DAY_MS) * DAY_MS;
    case 'month':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    case 'year':
      return Date.UTC(d.getUTCFullYear(), 0, 1);
  }
}

function advance(ms: number, step: Step): number {
  const d = new Date(ms);
  switch (step) {
    case 'hour':
      return ms + HOUR_MS;
    case 'day':
      return ms + DAY_MS;
    case 'month':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    case 'year':
      return Date.UTC(d.getUTCFullYear() + 1, 0, 1);
  }
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** Fill a template's tokens from one UTC instant. */
export function formatDateTemplate(template: string, atMs: number): string {
  const d = new Date(atMs);
  const dayOfYear = Math.floor((floorTo(atMs, 'day') - Date.UTC(d.getUTCFullYear(), 0, 1)) / DAY_MS) + 1;
  return template.replace(TOKEN_RE, (_, token: string) => {
    switch (token) {
      case 'YYYY':
        return pad(d.getUTCFullYear(), 4);
      case 'MM':
        return pad(d.getUTCMonth() + 1, 2);
      case 'DD':
        return pad(d.getUTCDate(), 2);
      case 'JJJ':
        return pad(dayOfYear, 3);
      default:
        return pad(d.getUTCHours(), 2);
    }
  });
}

export interface DateWindow {
  /** Inclusive start, ms since the epoch. */
  sinceMs: number;
  /** Exclusive end. */
  untilMs: number;
}

/**
 * The concrete directories a template names over [sinceMs, untilMs), oldest first, without
 * duplicates. A template without tokens is returned as is.
 *
 * @throws PermanentError `POLLER_DATE_WINDOW_TOO_LARGE` when more than `maxDirs` would be listed.
 * @example
 * expandDateTemplate('radar/{YYYY}/{MM}/{DD}', { sinceMs: Date.parse('2026-10-31T12:00Z'), untilMs: Date.parse('2026-11-02T00:00Z') })
 * // ['radar/2026/10/31', 'radar/2026/11/01']
 */
export function expandDateTemplate(template: string, window: DateWindow, maxDirs = MAX_TEMPLATE_DIRS): string[] {
  const step = stepOf(template);
  if (step === undefined) return [template];
  if (!(window.untilMs > window.sinceMs)) return [];
  const out: string[] = [];
  const seen = new Set<string>();
  // Bounded by maxDirs: each pass adds a directory or fails.
  for (let t = floorTo(window.sinceMs, step); t < window.untilMs; t = advance(t, step)) {
    const dir = formatDateTemplate(template, t);
    if (seen.has(dir)) continue;
    if (out.length >= maxDirs) {
      throw new PermanentError(
        'POLLER_DATE_WINDOW_TOO_LARGE',
        `${template}: the window ${new Date(window.sinceMs).toISOString()} to ${new Date(window.untilMs).toISOString()} needs more than ${maxDirs} directories; narrow --since/--until or maxAge`,
      );
    }
    seen.add(dir);
    out.push(dir);
  }
  return out;
}

/** A source's root and include globs with the date templates moved out of the root path. */
export interface SplitTemplate {
  /** The root up to the first segment with a token. */
  rootPath: string;
  /** Include globs relative to that root, tokens replaced by digit classes. */
  include: string[];
  /**
   * Directory templates (relative to `rootPath`) to expand per cycle; undefined when the source
   * has no date template or some include glob needs the whole tree anyway.
   */
  dirTemplates?: string[];
}

// A token stands for a fixed number of digits, which is also how it matches in a glob.
const TOKEN_GLOB: Record<string, string> = {
  YYYY: '[0-9][0-9][0-9][0-9]',
  MM: '[0-9][0-9]',
  DD: '[0-9][0-9]',
  JJJ: '[0-9][0-9][0-9]',
  HH: '[0-9][0-9]',
};

function tokensToGlob(glob: string): string {
  return glob.replace(TOKEN_RE, (_, token: string) => TOKEN_GLOB[token] ?? '*');
}

/**
 * Split `/data/{YYYY}/{MM}` + `['*.bufr']` into root `/data`, include `['<digits>/<digits>/*.bufr']`
 * and dir template `{YYYY}/{MM}`. Tokens in include globs (`radar/{YYYY}/{DD}/*.h5`) give dir
 * templates too: the directory part up to the last segment with a token.
 */
export function splitDateTemplate(rootPath: string, include: readonly string[]): SplitTemplate {
  const segments = rootPath.split('/');
  const first = segments.findIndex(hasDateTokens);
  const staticRoot = first < 0 ? rootPath : segments.slice(0, first).join('/') || '/';
  const rootRest = first < 0 ? '' : segments.slice(first).filter(Boolean).join('/');
  const globs = (include.length ? include : ['**']).map((g) => g.replace(/^\.?\/+/, ''));
  const joined = globs.map((g) => (rootRest ? `${rootRest}/${g}` : g));
  const templates: string[] = [];
  let wholeTree = false;
  for (const g of joined) {
    const parts = g.split('/');
    let last = -1;
    for (let i = 0; i < parts.length - 1; i++) if (hasDateTokens(parts[i] ?? '')) last = i;
    if (last < 0) {
      wholeTree = true;
      continue;
    }
    const dir = parts.slice(0, last + 1).join('/');
    // Globs above the dated directory (`*/{YYYY}`) cannot be expanded into fixed directories.
    if (/[*?[\]{}]/.test(dir.replace(TOKEN_RE, ''))) wholeTree = true;
    else if (!templates.includes(dir)) templates.push(dir);
  }
  return {
    rootPath: staticRoot,
    include: joined.map(tokensToGlob),
    ...(!wholeTree && templates.length > 0 && { dirTemplates: templates }),
  };
}

/** Expand every dir template over the window; the union, in template order. */
export function startDirsFor(
  dirTemplates: readonly string[],
  window: DateWindow,
  maxDirs = MAX_TEMPLATE_DIRS,
): string[] {
  const out = new Set<string>();
  for (const t of dirTemplates) for (const d of expandDateTemplate(t, window, maxDirs)) out.add(d);
  if (out.size > maxDirs) {
    throw new PermanentError(
      'POLLER_DATE_WINDOW_TOO_LARGE',
      `the window needs ${out.size} directories (more than ${maxDirs}); narrow --since/--until or maxAge`,
    );
  }
  return [...out];
}

/**
 * A dated directory that does not exist yet (today's, before its first file) is an empty
 * listing, not a failed cycle. Only the given start directories get this treatment.
 */
export function toleratingMissingDirs(source: Source, dirs: readonly string[]): Source {
  const dated = new Set(dirs);
  const list = async (dir: string, opts: { signal: AbortSignal }): Promise<Listing> => {
    try {
      return await source.list(dir, opts);
    } catch (err) {
      if (dated.has(dir) && err instanceof PermanentError) return [];
      throw err;
    }
  };
  // A Proxy rather than a copy: the methods of a class instance must keep it as `this`.
  return new Proxy(source, {
    get(target, prop) {
      if (prop === 'list') return list;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
