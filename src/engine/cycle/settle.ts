/**
 * Settle and diff: each listing is recorded in the ledger, which compares it with what it knows
 * (path + size + mtime; a changed file is a new version) and answers the versions that are
 * settled (unchanged across `stableListings` listings and older than `minAge`). run-once takes
 * the further listings within the cycle, `settleDelayMs` apart; the daemon takes one per cycle.
 */
import type { FileRecord } from '../../ledger/ledger.js';
import { sleep } from '../../transfer/retry.js';
import type { CycleContext } from './context.js';
import { type Listed, listOnce, walkFilter } from './listing.js';
import { recordAnnouncedDeletions, recordRemovals } from './removed.js';

/** This instance's lister lease on a shared ledger: its observations are fenced by the epoch. */
export interface ListerLease {
  readonly owner: string;
  readonly epoch: number;
}

/** The settled versions, ready to be claimed. */
export async function listAndSettle(ctx: CycleContext, lister?: ListerLease): Promise<FileRecord[]> {
  const { src, opts, summary } = ctx;
  const filter = walkFilter(src);
  const listings = opts.settleWithinCycle ? src.stableListings : 1;
  let ready: FileRecord[] = [];
  let last: Listed | undefined;
  for (let round = 0; round < listings; round++) {
    if (round > 0) await sleep(src.settleDelayMs, opts.signal);
    const listed = await listOnce(ctx, filter);
    last = listed;
    const result = await ctx.deps.ledger.observe(src.name, listed.observations, {
      nowMs: listed.atMs,
      minAgeMs: src.minAgeMs,
      stableListings: src.stableListings,
      // Old at first sight: no upload can still be running on it.
      oldEnoughMs: src.minAgeMs + Math.max(src.settleDelayMs, 60_000) * src.stableListings,
      ...(opts.dryRun && { dryRun: true }),
      ...(lister && { lister }),
    });
    if (round === 0) {
      summary.listed = result.counts.listed;
      summary.new = result.counts.new;
      summary.rejected = result.counts.rejected;
    }
    summary.settling = result.counts.settling;
    ready = [...result.ready];
    ctx.log.debug({ event: 'listing.observed', round, ...result.counts, ready: ready.length }, 'listing observed');
    // Another listing only helps files that are settling and not too young for minAge.
    if (result.counts.settling === 0 || opts.dryRun) break;
  }
  // One count per cycle, from its last listing: settle rounds are not listings of their own.
  if (last !== undefined) await recordRemovals(ctx, last, lister);
  await recordAnnouncedDeletions(ctx);
  return ready;
}
