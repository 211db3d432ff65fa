/**
 * Recursive listing driven by the globs: a directory is listed only when a file below it could
 * match. Directories are listed in parallel up to the source's connection budget. Bounded in
 * depth and in entries, so a hostile or runaway tree cannot exhaust memory.
 */
import pLimit from 'p-limit';
import type { KnownVersion, RemoteEntry, Source } from './source.js';

/** Deeper than any real archive layout (YYYY/MM/DD/HH/radar/product is 6). */
export const MAX_WALK_DEPTH = 32;
/** Entries kept from one walk; past this the walk stops and says so. */
export const MAX_WALK_ENTRIES = 2_000_000;

/** What the walk asks about paths: a GlobFilter, or one wrapped by the engine. */
export interface WalkFilter {
  matches(filePath: string): boolean;
  shouldDescend(dirPath: string): boolean;
  /**
   * Whether a matching file is kept (the engine's age window): the walk then holds only the files
   * of the window, not every file of a large archive tree.
   */
  keeps?(entry: RemoteEntry): boolean;
}

export interface WalkResult {
  files: RemoteEntry[];
  dirsListed: number;
  /** Listed entries that were not files we want (dirs, non-matching, excluded). */
  skipped: number;
  /** A listing looked cut short by a server cap, or the walk hit MAX_WALK_ENTRIES or MAX_WALK_DEPTH. */
  truncated: boolean;
  /** Listing lines the source could not read, summed over the directories listed. */
  unparsedLines: number;
  /** The directories listed ('' is the root). */
  dirs: string[];
}

export async function walkSource(
  source: Source,
  filter: WalkFilter,
  opts: {
    signal: AbortSignal;
    concurrency: number;
    startDirs?: readonly string[];
    /** The ledger's version of a path (passed on to sources that pay a request per file). */
    known?: (filePath: string) => Promise<KnownVersion | undefined>;
  },
): Promise<WalkResult> {
  const limit = pLimit(Math.max(1, opts.concurrency));
  const result: WalkResult = { files: [], dirsListed: 0, skipped: 0, truncated: false, unparsedLines: 0, dirs: [] };
  let seenEntries = 0;
  const visit = async (dir: string, depth: number): Promise<void> => {
    opts.signal.throwIfAborted();
    const entries = await limit(() =>
      source.list(dir, {
        signal: opts.signal,
        wanted: (p) => filter.matches(p),
        ...(opts.known && { known: opts.known }),
      }),
    );
    result.dirsListed++;
    result.dirs.push(dir);
    if (entries.truncated) result.truncated = true;
    result.unparsedLines += entries.unparsedLines ?? 0;
    const subdirs: string[] = [];
    for (const e of entries) {
      if (++seenEntries > MAX_WALK_ENTRIES) {
        result.truncated = true;
        return;
      }
      if (e.type === 'dir') {
        if (depth + 1 >= MAX_WALK_DEPTH) result.truncated = true;
        else if (filter.shouldDescend(e.path)) subdirs.push(e.path);
        result.skipped++;
      } else if (e.type === 'file' && filter.matches(e.path) && (filter.keeps?.(e) ?? true)) {
        result.files.push(e);
      } else {
        result.skipped++;
      }
    }
    await Promise.all(subdirs.map((d) => visit(d, depth + 1)));
  };
  await Promise.all((opts.startDirs ?? ['']).map((d) => visit(d, 0)));
  return result;
}
