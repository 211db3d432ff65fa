/**
 * Who lists, and the poll's record. On a shared ledger (PostgreSQL) one instance lists each
 * source under a lease with an epoch; the others (followers) claim the due files the lister
 * recorded. A ledger of one host (SQLite) always lists. The outcome of the listing is recorded
 * as the source's last poll; a failed listing is reported in the summary, never thrown.
 */
import { coerceError, errorCode, SourceError } from '../../errors.js';
import type { FileRecord } from '../../ledger/ledger.js';
import { hasSharedListing } from '../../ledger/ledger.js';
import type { CycleContext } from './context.js';
import { type ListerLease, listAndSettle } from './settle.js';

/** A source's lister lease on a shared ledger, unless configured (`leaseTime`). */
const DEFAULT_LISTER_LEASE_MS = 30_000;

export type Listing =
  /** `ready`: the settled versions this instance listed; a follower lists none and claims the due ones. */
  | { readonly outcome: 'listed'; readonly ready: FileRecord[]; readonly follower: boolean }
  /** Another instance took the lister lease while this one listed: it records, not this one. */
  | { readonly outcome: 'fenced' }
  /** The listing failed; `summary.error` says why. */
  | { readonly outcome: 'failed' };

export async function takeListing(ctx: CycleContext): Promise<Listing> {
  const { src, deps, opts, summary, log } = ctx;
  const shared = !opts.dryRun && hasSharedListing(deps.ledger) ? deps.ledger : undefined;
  let lister: ListerLease | undefined;
  if (shared) {
    const lease = deps.listerLeaseMs ?? DEFAULT_LISTER_LEASE_MS;
    const epoch = await shared.acquireLister(src.name, deps.owner, ctx.now(), lease);
    if (epoch !== null) lister = { owner: deps.owner, epoch };
  }
  const follower = shared !== undefined && lister === undefined && !opts.listOnce;
  try {
    const ready = follower ? [] : await listAndSettle(ctx, lister);
    if (!opts.dryRun) await deps.ledger.recordPoll(src.name, src.displayUrl, true, null, ctx.now());
    ctx.emit.polled?.(src.name, true);
    return { outcome: 'listed', ready, follower };
  } catch (thrown) {
    const err = coerceError(thrown);
    if (opts.signal.aborted) throw err;
    const code = errorCode(err);
    if (code === 'POLLER_LEDGER_LISTER_LOST') {
      log.warn({ event: 'lister.lost', err: { code, message: err.message } }, err.message);
      return { outcome: 'fenced' };
    }
    const paused = err instanceof SourceError;
    summary.error = { code, message: err.message, ...(paused && { paused }) };
    if (!opts.dryRun) await deps.ledger.recordPoll(src.name, src.displayUrl, false, err.message, ctx.now());
    ctx.emit.polled?.(src.name, false);
    log.error(
      { event: paused ? 'source.paused' : 'source.list_failed', err: { code, message: err.message } },
      `${src.name}: ${err.message}`,
    );
    return { outcome: 'failed' };
  }
}

/** A SourceError paused the source during its transfers: the poll is recorded as failed. */
export async function recordPause(ctx: CycleContext): Promise<void> {
  const { src, pausedBy } = ctx;
  if (!pausedBy) return;
  ctx.summary.error = { code: pausedBy.code, message: pausedBy.message, paused: true };
  ctx.log.error(
    { event: 'source.paused', err: { code: pausedBy.code, message: pausedBy.message } },
    `${src.name}: ${pausedBy.message}`,
  );
  await ctx.deps.ledger.recordPoll(src.name, src.displayUrl, false, pausedBy.message, ctx.now());
}
