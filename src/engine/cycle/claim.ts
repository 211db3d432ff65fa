/**
 * Claim: the ledger records this instance's intent on a file (atomically, with a lease) before a
 * byte of it is written; a daemon and a backfill on one ledger never take the same file. A batch
 * at a time, at most `maxFilesPerPoll`: the cap bounds one batch (its claims, leases and memory),
 * not the cycle. The lister claims its ready files newest first (the latest radar volume matters
 * more than the backlog); a follower claims the due files the lister recorded.
 */
import { type FileRecord, hasSharedListing } from '../../ledger/ledger.js';
import { type CycleContext, isStopped } from './context.js';

/** Batches a non-lister takes in one cycle (run-once drains; the daemon takes one). */
const MAX_FOLLOWER_BATCHES = 10_000;

/** The claimed batches, one after the other; sets `readyLeft` and `skipped` once done. */
export async function* claimBatches(
  ctx: CycleContext,
  listing: { readonly ready: FileRecord[]; readonly follower: boolean },
): AsyncGenerator<readonly FileRecord[]> {
  if (listing.follower) yield* claimDue(ctx);
  else yield* claimReady(ctx, listing.ready);
  ctx.summary.skipped = Math.max(0, ctx.summary.listed - ctx.claimed.files);
}

async function* claimReady(ctx: CycleContext, ready: FileRecord[]): AsyncGenerator<readonly FileRecord[]> {
  const { src, deps, summary } = ctx;
  ready.sort((a, b) => b.mtimeMs - a.mtimeMs || a.path.localeCompare(b.path));
  let taken = 0;
  while (taken < ready.length && !isStopped(ctx)) {
    const batch = ready.slice(taken, taken + src.maxFilesPerPoll);
    taken += batch.length;
    summary.batches++;
    const ids = batch.map((r) => r.id);
    yield counted(ctx, await deps.ledger.claimForFetch(ids, deps.owner, ctx.now() + ctx.claimLeaseMs, ctx.now()));
    if (!ctx.opts.drain) break;
  }
  summary.readyLeft = ready.length - taken;
}

async function* claimDue(ctx: CycleContext): AsyncGenerator<readonly FileRecord[]> {
  const { src, deps, summary } = ctx;
  const shared = hasSharedListing(deps.ledger) ? deps.ledger : undefined;
  let full = false;
  for (let batch = 0; shared && batch < MAX_FOLLOWER_BATCHES && !isStopped(ctx); batch++) {
    const lease = ctx.now() + ctx.claimLeaseMs;
    const claimed = await shared.claimDueForFetch(src.name, deps.owner, lease, ctx.now(), src.maxFilesPerPoll);
    full = claimed.length === src.maxFilesPerPoll;
    if (claimed.length === 0) break;
    summary.batches++;
    yield counted(ctx, claimed);
    if (!ctx.opts.drain) break;
  }
  // A full batch: more are likely due, and the daemon comes back at once rather than at the next tick.
  summary.readyLeft = full ? 1 : 0;
}

function counted(ctx: CycleContext, claimed: readonly FileRecord[]): readonly FileRecord[] {
  ctx.claimed.files += claimed.length;
  ctx.claimed.bytes += claimed.reduce((n, c) => n + c.sizeBytes, 0);
  ctx.emit.claimed?.(ctx.src.name, ctx.claimed.files, ctx.claimed.bytes);
  return claimed;
}
