/**
 * Fetch: each claimed file is landed (partial → size check → fsync → rename: transfer/landing.ts),
 * then committed as fetched (group commit), then handed to processing at once. Transfers hold a
 * connection of the source and a global transfer slot; a file still waiting for them when the
 * cycle stops (pause, drain, shutdown) is given back without an attempt.
 */
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import { coerceError, errorCode, SourceError } from '../../errors.js';
import type { FetchedItem, FileRecord } from '../../ledger/ledger.js';
import { formatVersion } from '../../ledger/version.js';
import { type LandResult, landFile } from '../../transfer/landing.js';
import { landingPathFor } from '../../transfer/landing-path.js';
import { sleep } from '../../transfer/retry.js';
import { applyAfter } from './after.js';
import { type CycleContext, isStopped } from './context.js';
import { decideFetchFailure, type FetchFailureDecision } from './fetch-failure.js';
import { ClaimLeases } from './leases.js';
import { processLanded, warnClaimLost } from './process.js';

/**
 * The cycle stopped before this file's transfer began. One shared instance: it is control flow,
 * never reported, so no stack is built per file.
 */
const STOPPED: unique symbol = Symbol('cycle stopped');

type TransferSlot = <T>(work: () => Promise<T>) => Promise<T>;

interface Transfer {
  readonly rec: FileRecord;
  /** Aborts with the cycle, or when the claim is taken over. */
  readonly signal: AbortSignal;
  /** No plugin wants the file: it is done once it has landed (one commit, no processing pass). */
  readonly done: boolean;
  readonly slot: TransferSlot;
}

/**
 * Fetches one claimed batch; resolves once every transfer ended, with the processing (plugins,
 * then `after:`) of the files that landed, which runs on meanwhile. A SourceError pauses the
 * source (`ctx.pausedBy`): the batch's transfers not yet begun are given back.
 */
export async function fetchBatch(ctx: CycleContext, claimed: readonly FileRecord[]): Promise<Promise<void>[]> {
  const leases = new ClaimLeases(ctx, claimed);
  const slot = transferSlot(ctx);
  // Files in flight (transferring or finishing): bounded, so open files and memory stay bounded.
  const inFlight = pLimit(ctx.src.concurrency * 2);
  const processing: Promise<void>[] = [];
  try {
    await Promise.all(
      claimed.map((rec) =>
        inFlight(async () => {
          const next = await fetchClaimed(ctx, rec, leases, slot);
          if (next) processing.push(next);
        }),
      ),
    );
  } finally {
    leases.stop();
  }
  return processing;
}

function transferSlot(ctx: CycleContext): TransferSlot {
  const perSource = pLimit(ctx.src.concurrency);
  return (work) =>
    perSource(() =>
      ctx.deps.transferLimit(async () => {
        if (isStopped(ctx)) throw STOPPED;
        return work();
      }),
    );
}

/** One claimed file: fetched, then (when landed) its processing, started. */
async function fetchClaimed(
  ctx: CycleContext,
  rec: FileRecord,
  leases: ClaimLeases,
  slot: TransferSlot,
): Promise<Promise<void> | undefined> {
  const { src, deps } = ctx;
  if (isStopped(ctx)) {
    leases.end(rec.id);
    await deps.ledger.releaseFetch([rec.id], deps.owner, ctx.now());
    return undefined;
  }
  const done = wantedByNoPlugin(ctx, rec);
  const transfer: Transfer = { rec, signal: leases.begin(rec.id), done, slot };
  const landed = await fetchOne(ctx, transfer).catch((err: unknown) => {
    if (err instanceof SourceError) ctx.pausedBy ??= err;
    return false;
  });
  leases.end(rec.id);
  if (!landed) return undefined;
  if (!done) return processLanded(ctx, rec);
  ctx.summary.processed++;
  ctx.emit.processed?.(src.name, rec.path, 'processed');
  return src.after ? applyAfter(ctx, rec) : undefined;
}

function wantedByNoPlugin(ctx: CycleContext, rec: FileRecord): boolean {
  const source = ctx.src.name;
  let localPath: string;
  try {
    localPath = landingPathFor(ctx.deps.landingRoot, source, rec.path);
  } catch {
    return false; // the landing refuses it with its own error
  }
  const file = { localPath, remotePath: rec.path, source, sizeBytes: rec.sizeBytes, mtimeMs: rec.mtimeMs, attempt: 1 };
  return ctx.deps.runner.pluginsFor(file).length === 0;
}

/** Fetches one claimed version, retrying transient failures a few times. Resolves true when landed and committed. */
async function fetchOne(ctx: CycleContext, t: Transfer): Promise<boolean> {
  const { src, deps } = ctx;
  for (let attempt = 1; ; attempt++) {
    const startedMs = performance.now();
    ctx.emit.fetchStarted?.(src.name, t.rec.path, t.rec.sizeBytes);
    try {
      const landed = await land(ctx, t);
      return await commitFetched(ctx, t, landed, startedMs);
    } catch (thrown) {
      const err = coerceError(thrown);
      const decision = decideFetchFailure(
        {
          err,
          stopped: t.signal.aborted || thrown === STOPPED,
          attempt,
          fetchAttempts: t.rec.fetchAttempts,
          nowMs: ctx.now(),
        },
        { maxAttempts: src.maxAttempts, retryBaseMs: deps.retryBaseMs, retryMaxMs: deps.retryMaxMs },
      );
      if (!(await carryOut(ctx, t, decision, err, attempt))) return false;
    }
  }
}

function land(ctx: CycleContext, t: Transfer): Promise<LandResult> {
  const { src, deps } = ctx;
  const integrity = ctx.source.integrity?.(t.rec.path, t.rec);
  return landFile(ctx.source, {
    landingRoot: deps.landingRoot,
    sourceName: src.name,
    fileId: t.rec.id,
    entry: t.rec,
    signal: t.signal,
    onBytes: (n) => ctx.emit.bytes?.(src.name, n),
    transferSlot: t.slot,
    ...(deps.hashLanded && { sha512: true }),
    ...(integrity && { integrity }),
  });
}

/**
 * After the rename (and its directory fsync): a crash before this commit is recovered by the
 * landed-file check on the next attempt. False when the claim was lost meanwhile.
 */
async function commitFetched(ctx: CycleContext, t: Transfer, landed: LandResult, startedMs: number): Promise<boolean> {
  const { rec } = t;
  const item: FetchedItem = {
    id: rec.id,
    localPath: landed.localPath,
    ...(t.done && { done: true }),
    ...(landed.sha512 && { sha512: landed.sha512 }),
  };
  if (await ctx.commits.fetched.add(item)) {
    warnClaimLost(fileLog(ctx, rec), 'mark fetched');
    return false;
  }
  const durationMs = performance.now() - startedMs;
  ctx.summary.fetched++;
  ctx.summary.bytes += landed.bytesTransferred;
  ctx.emit.fetched?.(ctx.src.name, rec.path, rec.sizeBytes, durationMs, rec.mtimeMs);
  ctx.log.info(
    {
      event: 'file.fetched',
      path: rec.path,
      version: formatVersion(rec),
      bytes: landed.bytesTransferred,
      resumedFrom: landed.resumedFromBytes || undefined,
      durationMs: Math.round(durationMs),
    },
    'file fetched',
  );
  return true;
}

/** Carries out the decision on a failed attempt; true when the file is tried again now. */
async function carryOut(
  ctx: CycleContext,
  t: Transfer,
  d: FetchFailureDecision,
  err: Error,
  attempt: number,
): Promise<boolean> {
  const { deps } = ctx;
  const { rec } = t;
  const release = () => deps.ledger.releaseFetch([rec.id], deps.owner, ctx.now());
  switch (d.action) {
    case 'release':
      await release();
      if (d.changed)
        fileLog(ctx, rec).warn(
          { event: 'file.changed', err: { code: errorCode(err), message: err.message } },
          'file changed during download; waiting for it to settle',
        );
      return false;
    case 'pause':
      await deps.ledger.markFetchFailed([{ id: rec.id, failure: d.failure }], deps.owner, ctx.now());
      throw err;
    case 'retry':
      fileLog(ctx, rec).warn(
        { event: 'file.retried', attempt, delayMs: d.delayMs, err: { code: errorCode(err), message: err.message } },
        'fetch failed; retrying',
      );
      return sleep(d.delayMs, t.signal).then(
        () => true,
        () => release().then(() => false),
      );
    case 'fail': {
      const { quarantine, errorCode: code } = d.failure;
      await deps.ledger.markFetchFailed([{ id: rec.id, failure: d.failure }], deps.owner, ctx.now());
      ctx.summary.failed++;
      ctx.emit.fetchFailed?.(ctx.src.name, rec.path, code, quarantine);
      fileLog(ctx, rec).error(
        {
          event: quarantine ? 'file.quarantined' : 'file.fetch_failed',
          attempts: d.attempts,
          err: { code, message: err.message },
        },
        quarantine ? `fetch failed for good: ${err.message}` : `fetch failed: ${err.message}`,
      );
      return false;
    }
  }
}

/** A child logger costs a serialisation of its bindings: made only when something goes wrong. */
function fileLog(ctx: CycleContext, rec: FileRecord): Logger {
  return ctx.log.child({ path: rec.path, version: formatVersion(rec) });
}
