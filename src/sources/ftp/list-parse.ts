/**
 * Pure parsers for FTP directory listings: MLSD (RFC 3659) and the LIST styles seen in the field
 * (Unix `ls -l` in its many shapes, DOS/IIS, OS/2, EPLF, OpenVMS, IBM i), one module per style
 * under listing/. No I/O, no clock: `nowMs` is passed in.
 *
 * A line either parses as the peer clients agree or is refused into `unparsed`: a name, size or
 * date is never guessed. Facts a line does not carry exactly (VMS block counts, an MLSD entry
 * without `modify`) come back `undefined` for the lister to ask the server (list.ts).
 */
import { type DateOrder, dosDateOrder, parseDosLine, parseOs2Line } from './listing/dos.js';
import { parseEplfLine } from './listing/eplf.js';
import { MAX_LINE_CHARS } from './listing/mlsd.js';
import { os400DateOrder, parseOs400Line } from './listing/os400.js';
import {
  IGNORED,
  type LineResult,
  type ParsedEntry,
  type ParsedListing,
  type ParseListOptions,
} from './listing/types.js';
import { parseUnixLine } from './listing/unix.js';
import { joinVmsContinuations, newestVersions, parseVmsLine } from './listing/vms.js';
import { makeZoneConverter, type ZoneConverter } from './listing/zone.js';

export { parseMlsd, parseMlsdTime } from './listing/mlsd.js';
export type { ParsedEntry, ParsedListing, ParseListOptions } from './listing/types.js';
export { assertTimeZone, zonedTimeToUtcMs, zoneOffsetMs } from './listing/zone.js';

interface ListingContext {
  readonly zone: ZoneConverter;
  readonly nowMs: number;
  /** Date orders read off the whole listing, worked out on the first DOS / OS/400 line only. */
  dosOrder(): DateOrder;
  os400Order(): DateOrder | undefined;
}

function once<T>(compute: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = compute();
      done = true;
    }
    return value;
  };
}

/** Summary lines every lister skips: `total 12` (ls), `Total of 3 files, 9 blocks.` (VMS). */
const TOTAL_LINE = /^total\s+\d+\s*$/i;

/**
 * Parses a LIST reply body, per line (a listing mixing styles works); times are read in
 * `opts.timezone`. `total N`, `.` and `..` are dropped; lines no style accepts are `unparsed`.
 */
export function parseList(text: string, opts: ParseListOptions): ParsedListing {
  const entries: ParsedEntry[] = [];
  const unparsed: string[] = [];
  let lineCount = 0;
  const lines = joinVmsContinuations(text.split(/\r?\n/).filter((line) => line.trim() !== ''));
  const ctx: ListingContext = {
    zone: makeZoneConverter(opts.timezone, opts.nowMs),
    nowMs: opts.nowMs,
    dosOrder: once(() => dosDateOrder(lines)),
    os400Order: once(() => os400DateOrder(lines)),
  };
  for (const line of lines) {
    if (TOTAL_LINE.test(line)) continue;
    lineCount++;
    const result = line.length > MAX_LINE_CHARS ? undefined : parseListLine(line, ctx);
    if (result === IGNORED) continue;
    if (result === undefined) unparsed.push(line);
    else entries.push(result);
  }
  return { entries: newestVersions(entries), unparsed, lineCount };
}

function parseListLine(line: string, ctx: ListingContext): LineResult {
  if (line.startsWith('+')) return parseEplfLine(line);
  return (
    parseUnixLine(line, ctx.zone, ctx.nowMs) ??
    parseDosLine(line, ctx.dosOrder, ctx.zone, ctx.nowMs) ??
    parseOs2Line(line, ctx.zone, ctx.nowMs) ??
    parseVmsLine(line, ctx.zone, ctx.nowMs) ??
    parseOs400Line(line, ctx.os400Order, ctx.zone, ctx.nowMs)
  );
}

/** A listing of exactly a known default cap of entries was probably cut there (pure-ftpd: 2,000). */
export function looksTruncated(lineCount: number): boolean {
  return KNOWN_LISTING_CAPS.has(lineCount);
}

/** Default listing caps of servers in the field (pure-ftpd's -L default is 2000). */
const KNOWN_LISTING_CAPS = new Set([1000, 2000, 5000, 10_000]);
