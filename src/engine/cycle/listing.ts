/**
 * One listing of a source: walk it under the include/exclude filter and turn what it lists into
 * the observations this cycle records (the age window applied, unsafe names marked for rejection).
 */
import type { SourceConfig } from '../../config/load.js';
import type { Ledger, Observation } from '../../ledger/ledger.js';
import type { ListingCoverage } from '../../ledger/removed-upstream.js';
import { dirOf } from '../../ledger/rows.js';
import type { KnownVersion, RemoteEntry } from '../../sources/source.js';
import { type WalkFilter, walkSource } from '../../sources/walk.js';
import { unsafeRemotePathReason } from '../../transfer/landing-path.js';
import { GlobFilter } from '../../util/glob.js';
import type { CycleContext } from './context.js';
import type { CycleOptions } from './types.js';

export interface Listed {
  readonly observations: Observation[];
  readonly truncated: boolean;
  /** What the listing covered, when it is complete (no cap hit, no line left unread). */
  readonly coverage?: ListingCoverage;
  /** When the listing ended: the time the observations are recorded at. */
  readonly atMs: number;
}

/** The source's walk filter; unsafe names pass it so that they are recorded as rejected, not silently dropped. */
export function walkFilter(src: SourceConfig): WalkFilter {
  // Files moved into the `after: { move }` directory must not come back as new files.
  const moveDir = src.after?.action === 'move' ? [src.after.dir, `${src.after.dir}/**`] : [];
  const globs = new GlobFilter(src.include, [...src.exclude, ...moveDir]);
  return {
    matches: (p: string) => unsafeRemotePathReason(p) !== undefined || globs.matches(p),
    shouldDescend: (p: string) => unsafeRemotePathReason(p) === undefined && globs.shouldDescend(p),
  };
}

export async function listOnce(ctx: CycleContext, filter: WalkFilter): Promise<Listed> {
  const { src, opts, deps } = ctx;
  // The age window applied while walking too (measured from the walk's start, so it keeps a
  // superset of what toObservations keeps): memory follows the window, not the tree.
  const startMs = ctx.now();
  const inWindow = (e: RemoteEntry): boolean =>
    !(src.maxAgeMs !== undefined && startMs - e.mtimeMs > src.maxAgeMs) &&
    !(opts.sinceMs !== undefined && e.mtimeMs < opts.sinceMs) &&
    !(opts.untilMs !== undefined && e.mtimeMs >= opts.untilMs);
  const walk = await walkSource(
    ctx.source,
    {
      matches: (p) => filter.matches(p),
      shouldDescend: (p) => filter.shouldDescend(p),
      keeps: (e) => (filter.keeps?.(e) ?? true) && inWindow(e),
    },
    {
      signal: opts.signal,
      concurrency: src.maxConnections,
      ...(opts.startDirs && { startDirs: opts.startDirs }),
      known: (p) => knownVersion(deps.ledger, src.name, p),
    },
  );
  if (walk.truncated)
    ctx.log.warn(
      { event: 'listing.truncated', files: walk.files.length },
      'listing cut short at the walk limits; some files may be missed',
    );
  const atMs = ctx.now();
  const observations = toObservations(walk.files, src, opts, atMs);
  ctx.emit.listed?.(src.name, observations.length, walk.truncated, walk.unparsedLines);
  const complete = !walk.truncated && walk.unparsedLines === 0;
  if (!complete) return { observations, truncated: walk.truncated, atMs };
  const listedDirs = new Set(walk.dirs);
  const coverage: ListingCoverage = {
    present: new Set(walk.files.map((f) => f.path)),
    covers: (p) => listedDirs.has(dirOf(p)) && filter.matches(p),
    ...(src.maxAgeMs !== undefined && { mtimeFromMs: atMs - src.maxAgeMs }),
  };
  return { observations, truncated: walk.truncated, coverage, atMs };
}

/** The ledger's latest version of a path, for sources that would otherwise ask the server (HTTP HEAD). */
async function knownVersion(ledger: Ledger, source: string, path: string): Promise<KnownVersion | undefined> {
  const [latest] = await ledger.history(source, path);
  if (latest === undefined || latest.state === 'rejected') return undefined;
  return {
    sizeBytes: latest.sizeBytes,
    mtimeMs: latest.mtimeMs,
    mtimePrecision: latest.mtimePrecision,
    ...(latest.etag !== undefined && { etag: latest.etag }),
    ...(latest.fetchedMs !== null && { fetchedMs: latest.fetchedMs }),
    settled: latest.state !== 'seen',
    done:
      latest.state !== 'seen' &&
      latest.state !== 'fetching' &&
      !(latest.state === 'failed' && latest.stage === 'fetch'),
  };
}

function toObservations(
  files: readonly RemoteEntry[],
  src: SourceConfig,
  opts: CycleOptions,
  nowMs: number,
): Observation[] {
  const out: Observation[] = [];
  for (const entry of files) {
    if (src.maxAgeMs !== undefined && nowMs - entry.mtimeMs > src.maxAgeMs) continue;
    if (opts.sinceMs !== undefined && entry.mtimeMs < opts.sinceMs) continue;
    if (opts.untilMs !== undefined && entry.mtimeMs >= opts.untilMs) continue;
    const reason = unsafeRemotePathReason(entry.path);
    out.push(reason ? { entry, rejectReason: reason } : { entry });
  }
  return out;
}
