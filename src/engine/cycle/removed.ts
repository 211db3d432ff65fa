/**
 * Files removed upstream: after a complete listing (no cap hit, no line left unread, the whole
 * window listed), the ledger counts the versions the listing missed and records as `gone` those
 * missed `goneAfterListings` times in a row (ledger/removed-upstream.ts). A source that hears of
 * removals itself (a WIS2 `deletion` notification) hands them over, and the ledger records the
 * path gone at once, saying who said so. With `mirrorDeletes`, the landed copy of a gone version
 * is removed: only a regular file inside the source's landing tree, never a link, a directory or
 * anything outside it.
 */
import { lstat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { FileRecord } from '../../ledger/ledger.js';
import { hasRemovedUpstream } from '../../ledger/removed-upstream.js';
import type { AnnouncedDeletion } from '../../sources/source.js';
import type { CycleContext } from './context.js';
import type { Listed } from './listing.js';
import type { ListerLease } from './settle.js';

export async function recordRemovals(ctx: CycleContext, listed: Listed, lister?: ListerLease): Promise<void> {
  const { src, opts, deps } = ctx;
  const ledger = deps.ledger;
  // A listing bounded in time (--since/--until) or in part (a cap, unread lines) proves no absence.
  if (src.goneAfterListings <= 0 || opts.dryRun || listed.coverage === undefined) return;
  if (opts.sinceMs !== undefined || opts.untilMs !== undefined || !hasRemovedUpstream(ledger)) return;
  const result = await ledger.recordAbsences(src.name, listed.coverage, {
    nowMs: listed.atMs,
    goneAfter: src.goneAfterListings,
    ...(lister && { lister }),
  });
  for (const f of result.gone) {
    ctx.log.info(
      { event: 'file.gone', path: f.path, listings: src.goneAfterListings },
      `removed upstream: missing from ${src.goneAfterListings} complete listings in a row`,
    );
    if (src.mirrorDeletes) await removeLandedCopy(ctx, f);
  }
  if (result.back > 0) ctx.log.info({ event: 'file.back', files: result.back }, 'files gone upstream are listed again');
}

/**
 * Removals the source heard of (WIS2 deletions): each recorded in the ledger, then acknowledged
 * to the source. One whose version is being fetched or processed waits for the next cycle; one
 * for a path the ledger never knew is said once and dropped.
 */
export async function recordAnnouncedDeletions(ctx: CycleContext): Promise<void> {
  const { src, source, opts, deps } = ctx;
  const ledger = deps.ledger;
  const announced = source.deletions?.() ?? [];
  if (announced.length === 0 || opts.dryRun || !hasRemovedUpstream(ledger)) return;
  const done: AnnouncedDeletion[] = [];
  for (const d of announced) {
    const result = await ledger.recordDeletion(src.name, d, { nowMs: ctx.now() });
    if (result.busy) continue;
    done.push(d);
    if (!result.known) {
      ctx.log.info(
        { event: 'file.deletion_unknown', path: d.path, by: d.by },
        `${d.by} deletes ${d.path}, which this source never had: nothing to do`,
      );
      continue;
    }
    for (const f of result.gone) {
      ctx.log.info(
        { event: 'file.gone', path: f.path, by: d.by, atMs: d.atMs },
        `deleted upstream by ${d.by} at ${new Date(d.atMs).toISOString()}`,
      );
      if (src.mirrorDeletes) await removeLandedCopy(ctx, f);
    }
  }
  if (done.length > 0) await source.deletionsRecorded?.(done);
}

async function removeLandedCopy(ctx: CycleContext, f: FileRecord): Promise<void> {
  if (f.localPath === null) return;
  const base = path.resolve(ctx.deps.landingRoot, ctx.src.name);
  const target = path.resolve(f.localPath);
  if (!target.startsWith(base + path.sep)) {
    ctx.log.warn(
      { event: 'file.gone_kept', path: f.path, localPath: f.localPath },
      'landed copy is outside the landing tree: kept',
    );
    return;
  }
  try {
    const st = await lstat(target);
    if (!st.isFile()) return;
    await unlink(target);
    ctx.log.info(
      { event: 'file.gone_removed', path: f.path, localPath: target },
      'landed copy of a file gone upstream removed',
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      ctx.log.warn(
        { event: 'file.gone_kept', path: f.path, err: (err as Error).message },
        'landed copy could not be removed',
      );
    }
  }
}
