/** What the per-style listing parsers return. */
import type { EntryType, MtimePrecision } from '../../source.js';

/**
 * One parsed listing line. `name` is the last path segment as the server sent it. A size or time
 * the line does not give exactly (VMS blocks, `33.5k`, an MLSD entry without `modify`, a
 * `DD/MM` date that could be `MM/DD`) is `undefined`: the lister asks the server (SIZE, MDTM)
 * rather than guess, so a guessed number never becomes a file's version.
 */
export interface ParsedEntry {
  readonly name: string;
  readonly type: EntryType;
  readonly sizeBytes: number | undefined;
  readonly mtimeMs: number | undefined;
  readonly mtimePrecision: MtimePrecision;
  /** Symlink target when the server shows one (`name -> target`). */
  readonly linkTarget?: string;
  /** VMS file version (`NAME.EXT;7`); only the highest version of a name is listed. */
  readonly version?: number;
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

/** A line was understood but carries no entry (`.`, `..`, `total 12`, a header, an empty name). */
export const IGNORED = Symbol('ignored');
export type LineResult = ParsedEntry | typeof IGNORED | undefined;

/** Largest byte count a JavaScript number holds exactly; larger listed sizes are refused. */
export function parseSize(text: string): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}
