/**
 * One poll cycle of one source, top-down (README "How a cycle works"; docs/architecture.md maps
 * each step to its file). Crash-safe order: the ledger records intent (claim) before a byte is
 * written, a file is renamed into place only when complete, and the ledger commit follows the
 * rename. Commits are grouped across concurrent files (commits.ts); the commit points below write
 * what is queued at once instead of at the group's timer.
 */
import type { SourceConfig } from '../../config/load.js';
import type { Source } from '../../sources/source.js';
import { sweepPartials } from '../../transfer/landing.js';
import { claimBatches } from './claim.js';
import { createCycleContext, summaryForLog } from './context.js';
import { fetchBatch } from './fetch.js';
import { recordPause, takeListing } from './lister.js';
import { processDue } from './process.js';
import type { CycleDeps, CycleOptions, CycleSummary } from './types.js';
import { volumeStage } from './volumes.js';

export { LedgerCommits } from './commits.js';
export { LEASE_MS } from './context.js';
export { processClaimed } from './process.js';
export type { CycleDeps, CycleEvents, CycleOptions, CycleSummary } from './types.js';

export async function runCycle(
  src: SourceConfig,
  source: Source,
  deps: CycleDeps,
  opts: CycleOptions,
): Promise<CycleSummary> {
  const ctx = createCycleContext(src, source, deps, opts);
  // 1. List, filter, settle and diff against the ledger (a follower on a shared ledger leaves the
  //    listing to the lister); the poll is recorded.
  const listing = await takeListing(ctx);
  if (listing.outcome === 'fenced') return ctx.summary;
  if (listing.outcome === 'failed') {
    await volumeStage(ctx);
    return ctx.summary;
  }
  if (opts.dryRun) {
    ctx.summary.skipped = ctx.summary.listed - listing.ready.length;
    return ctx.summary;
  }
  try {
    // 2. Claim a batch at a time, newest first.
    for await (const batch of claimBatches(ctx, listing)) {
      // 3. Fetch: land each file, then commit it as fetched; 4. its processing starts at once.
      const processing = await fetchBatch(ctx, batch);
      // Commit point: the batch's transfers are over; what they handed in is written now.
      ctx.commits.flush();
      await Promise.all(processing);
    }
    // 5. Files fetched earlier whose processing is due (plugin retries, a crash between fetch and process).
    if (!opts.drainSignal?.aborted) await processDue(ctx);
  } finally {
    // Commit point: nothing handed in waits for its group's timer.
    ctx.commits.flush();
  }
  // 6. A version that moved while settling leaves its old partial behind; it is never resumed (the
  //    version is in the name) and is removed here, after a cycle that fetched.
  if (ctx.claimed.files > 0) await sweepPartials(deps.landingRoot, await deps.ledger.liveFetches());
  await recordPause(ctx);
  // 7. Volumes: members join, quiet volumes close, volume plugins run.
  await volumeStage(ctx);
  ctx.log.info(
    { event: 'cycle.finished', durationMs: ctx.now() - ctx.startedMs, ...summaryForLog(ctx.summary) },
    'cycle finished',
  );
  return ctx.summary;
}
