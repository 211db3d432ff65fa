/**
 * Lists one remote directory: MLSD when the server announced it, LIST otherwise. The raw reply
 * text is taken from basic-ftp and parsed here (list-parse.ts), because basic-ftp's own LIST
 * parser keeps no date for year-less lines and drops the minute/day precision we need.
 */
import { PermanentError } from '../../errors.js';
import type { PooledClient } from './client-pool.js';
import { looksTruncated, type ParsedListing, parseList, parseMlsd } from './list-parse.js';

/** Replies of servers that cut a listing: pure-ftpd "Output truncated to 2000 matches". */
const TRUNCATION_REPLY = /^< 2\d\d[- ].*truncated/im;

export interface RawListingResult extends ParsedListing {
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
  return { ...parsed, command, truncated: serverSaysTruncated || looksTruncated(parsed.lineCount) };
}
