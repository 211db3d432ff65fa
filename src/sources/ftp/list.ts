/**
 * Lists one remote directory: MLSD when the server announced it, LIST otherwise. The raw reply
 * text is taken from basic-ftp and parsed here (list-parse.ts), because basic-ftp's own LIST
 * parser keeps no date for year-less lines and drops the minute/day precision we need.
 */
import { PermanentError } from '../../errors.js';
import type { PooledClient } from './client-pool.js';
import { looksTruncated, type ParsedEntry, parseList, parseMlsd, parseMlsdTime } from './list-parse.js';

/** Replies of servers that cut a listing: pure-ftpd "Output truncated to 2000 matches". */
const TRUNCATION_REPLY = /^< 2\d\d[- ].*truncated/im;

/** A listed entry with its size and time known (from the listing, or asked by SIZE / MDTM). */
export interface ListedEntry extends ParsedEntry {
  readonly sizeBytes: number;
  readonly mtimeMs: number;
}

/**
 * Files whose size or time one listing leaves to SIZE / MDTM (VMS sizes in blocks, MLSD without
 * `modify`): at most this many are asked per listing, two round trips each; past it the rest are
 * left out and the listing counts as truncated, so nothing is concluded from their absence.
 */
const MAX_FACT_QUERIES = 2000;

export interface RawListingResult {
  readonly entries: ListedEntry[];
  /** Lines no parser accepted, and files whose size or time the server would not give. */
  readonly unparsed: string[];
  readonly lineCount: number;
  readonly command: 'MLSD' | 'LIST';
  /**
   * The listing looks cut short by a server cap: the server said so in its reply, or the entry
   * count is a round number such as pure-ftpd's 2,000.
   */
  readonly truncated: boolean;
}

export interface ListDirectoryOptions {
  /** Source name, for error messages. */
  source: string;
  /** Path relative to the source root, for error messages. */
  dir: string;
  timezone: string;
  nowMs: number;
  maxListingBytes: number;
}

/**
 * Changes into `absDir` (so a missing directory is a clear 550, and names with spaces need no
 * quoting on the LIST line) and fetches its listing.
 */
export async function listDirectory(
  pc: PooledClient,
  absDir: string,
  opts: ListDirectoryOptions,
): Promise<RawListingResult> {
  const client = pc.client;
  await client.cd(absDir);
  let raw = '';
  // basic-ftp fetches the listing (passive data connection, byte cap, TLS) and hands us the text.
  client.parseList = (text: string) => {
    raw = text;
    return [];
  };
  const command = pc.mlsd ? 'MLSD' : 'LIST';
  client.availableListCommands = [command];
  // basic-ftp keeps the final reply of a listing to itself; its debug hook sees every control
  // reply. pure-ftpd says "226 Output truncated to 2000 matches" there when its cap cut the listing.
  const ftp = client.ftp as { log(message: string): void };
  const ownLog = Object.hasOwn(ftp, 'log') ? ftp.log : undefined;
  let serverSaysTruncated = false;
  ftp.log = (message: string) => {
    if (message.startsWith('< ') && TRUNCATION_REPLY.test(message)) serverSaysTruncated = true;
  };
  try {
    await client.list();
  } catch (err) {
    if (err instanceof Error && /Maximum bytes exceeded/i.test(err.message)) {
      throw new PermanentError(
        'POLLER_FTP_LISTING_TOO_LARGE',
        `source ${JSON.stringify(opts.source)}: list ${JSON.stringify(opts.dir)}: listing is larger than maxListingBytes (${opts.maxListingBytes}); raise it or narrow the include globs`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    if (ownLog !== undefined) ftp.log = ownLog;
    else delete (ftp as { log?: unknown }).log;
  }
  const parsed = command === 'MLSD' ? parseMlsd(raw) : parseList(raw, { timezone: opts.timezone, nowMs: opts.nowMs });
  const unparsed = [...parsed.unparsed];
  const entries: ListedEntry[] = [];
  let queries = 0;
  let cut = false;
  for (const e of parsed.entries) {
    if (e.sizeBytes !== undefined && e.mtimeMs !== undefined) {
      entries.push(e as ListedEntry);
      continue;
    }
    // Directories and links: only their names matter to the walk.
    if (e.type !== 'file') {
      entries.push({ ...e, sizeBytes: e.sizeBytes ?? 0, mtimeMs: e.mtimeMs ?? 0 });
      continue;
    }
    if (++queries > MAX_FACT_QUERIES) {
      cut = true;
      continue;
    }
    const asked = await askFacts(pc, e);
    if (typeof asked === 'string') unparsed.push(asked);
    else entries.push(asked);
  }
  return {
    entries,
    unparsed,
    lineCount: parsed.lineCount,
    command,
    truncated: serverSaysTruncated || cut || looksTruncated(parsed.lineCount),
  };
}

/**
 * SIZE and MDTM for a file the listing did not size or date exactly (the client is in its
 * directory). A server that answers neither leaves a line for the unparsed log: a guessed size
 * would fail the landing's check, a guessed time would hide new versions.
 */
async function askFacts(pc: PooledClient, e: ParsedEntry): Promise<ListedEntry | string> {
  let sizeBytes = e.sizeBytes;
  let mtimeMs = e.mtimeMs;
  let mtimePrecision = e.mtimePrecision;
  if (sizeBytes === undefined) {
    const res = await pc.client.sendIgnoringError(`SIZE ${e.name}`);
    const n = res.code === 213 ? Number(res.message.slice(4).trim()) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 0)
      return `${e.name}: size not in the listing and SIZE answered ${JSON.stringify(res.message.slice(0, 80))}`;
    sizeBytes = n;
  }
  if (mtimeMs === undefined) {
    const res = await pc.client.sendIgnoringError(`MDTM ${e.name}`);
    const t = res.code === 213 ? parseMlsdTime(res.message.slice(4)) : undefined;
    if (t === undefined)
      return `${e.name}: time not in the listing and MDTM answered ${JSON.stringify(res.message.slice(0, 80))}`;
    mtimeMs = t.ms;
    mtimePrecision = t.precision;
  }
  return { ...e, sizeBytes, mtimeMs, mtimePrecision };
}
