/**
 * One poll cycle of one source: list → filter → settle → diff → claim → order → fetch → process.
 * Crash-safe order: the ledger records intent (claim) before a byte is written, the file is
 * renamed into place only when complete, and the ledger commit follows the rename.
 */
import { setMaxListeners } from 'node:events';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import type { SourceConfig } from '../config/load.js';
import { coerceError, errorCode, PollerError, SourceError, ThrottledError } from '../errors.js';
import type {
  FetchedItem,
  FileRecord,
  FileState,
  Ledger,
  Observation,
  PluginOutcome,
  PluginRunRecord,
  PluginRunStart,
  ProcessingResult,
} from '../ledger/ledger.js';
import { hasSharedListing } from '../ledger/ledger.js';
import { formatVersion } from '../ledger/version.js';
import type { PluginFile } from '../plugins/api.js';
import type { PluginRunner } from '../plugins/runner.js';
import type { KnownVersion, RemoteEntry, Source } from '../sources/source.js';
import { type WalkFilter, walkSource } from '../sources/walk.js';
import { isAlreadyLanded, landFile, sweepPartials } from '../transfer/landing.js';
import { landingPathFor, unsafeRemotePathReason } from '../transfer/landing-path.js';
import { backoffDelayMs, sleep } from '../transfer/retry.js';
import { GlobFilter } from '../util/glob.js';
import { GroupCommit } from './group-commit.js';
import { outcomeOf, planRun } from './plugin-outcome.js';
import { runVolumeStage, type VolumeEvents, type VolumeStageSummary } from './volume-stage.js';

export interface CycleSummary {
  name: string;
  listed: number;
  new: number;
  fetched: number;
  bytes: number;
  processed: number;
  failed: number;
  /** Listed but not taken this cycle: unchanged, settling, too old, rejected, over the cap. */
  skipped: number;
  settling: number;
  rejected: number;
  /** Batches of at most `maxFilesPerPoll` files taken in this cycle. */
  batches: number;
  /**
   * Ready files left for a later cycle (over the cap, when the cycle does not drain). An instance
   * that does not list (shared ledger) cannot count them: 1 when its last claim was a full batch.
   */
  readyLeft: number;
  /** The volume stage of a source with `volumes:` (members joined, volumes closed and run). */
  volumes?: VolumeStageSummary;
  /** Set when the cycle could not run (listing failed, source unusable). */
  error?: {
    code: string;
    message: string;
    /** The source itself is unusable (SourceError: login, TLS, host): a scheduler backs off. */
    paused?: boolean;
  };
}

/** Hooks for metrics and progress displays. Each is optional; a throwing hook is ignored. */
export interface CycleEvents extends VolumeEvents {
  listed?(source: string, files: number, truncated: boolean): void;
  /** Files claimed for download in this cycle and their total size (a progress display's 100 %). */
  claimed?(source: string, files: number, sizeBytes: number): void;
  fetchStarted?(source: string, path: string, sizeBytes: number): void;
  bytes?(source: string, n: number): void;
  fetched?(source: string, path: string, sizeBytes: number, durationMs: number, mtimeMs: number): void;
  fetchFailed?(source: string, path: string, code: string, quarantined: boolean): void;
  pluginRan?(plugin: string, ok: boolean, durationMs: number): void;
  processed?(source: string, path: string, state: string): void;
  polled?(source: string, ok: boolean): void;
}

export interface CycleDeps {
  ledger: Ledger;
  runner: PluginRunner;
  log: Logger;
  owner: string;
  landingRoot: string;
  /** Shared by every source: the global cap on transfers. */
  transferLimit: LimitFunction;
  retryBaseMs: number;
  retryMaxMs: number;
  events?: CycleEvents;
  now?: () => number;
  /** An event sink wants the SHA-512 of landed files (WNM `integrity`): hash them as they stream. */
  hashLanded?: boolean;
  /** A shared ledger (PostgreSQL): how long a source's lister lease lasts. @default 30 s */
  listerLeaseMs?: number;
  /** How long a claim on a file lasts unless renewed (renewed every third of it). @default LEASE_MS */
  claimLeaseMs?: number;
}

export interface CycleOptions {
  signal: AbortSignal;
  /** run-once: take the settle listings within this cycle, `settleDelayMs` apart. */
  settleWithinCycle: boolean;
  dryRun?: boolean;
  /** Only files with mtime in [sinceMs, untilMs). */
  sinceMs?: number;
  untilMs?: number;
  /** Directories to start the walk from (date templates expanded); default the root. */
  startDirs?: readonly string[];
  /**
   * Graceful stop: once aborted, transfers not yet started are released (left for a later run)
   * while those under way go on until `signal` aborts them.
   */
  drainSignal?: AbortSignal;
  /**
   * Keep taking batches of `maxFilesPerPoll` from this cycle's listing until none is ready
   * (run-once). Off (the daemon): one batch; `readyLeft` tells the scheduler to come back at once.
   */
  drain?: boolean;
  /**
   * A shared ledger (run-once, a backfill): list even while another instance holds the source's
   * lister lease. A one-shot listing is safe unfenced (the ledger dedupes by version); it neither
   * takes nor renews the lease, and the files it lists are claimed like any others.
   */
  listOnce?: boolean;
}

/**
 * The cycle stopped (paused source, drain, shutdown) before this file's transfer began. One
 * shared instance: it is control flow, never reported, so no stack is built per file.
 */
const STOPPED: unique symbol = Symbol('cycle stopped');

/** Listeners the cycle's signals may carry before Node warns of a leak (in-flight work is bounded by config). */
const MAX_SIGNAL_LISTENERS = 10_000;

/** Claims are held this long without renewal; renewed every third of it while work goes on. */
export const LEASE_MS = 10 * 60_000;

function claimLeaseMs(deps: Pick<CycleDeps, 'claimLeaseMs'>): number {
  return deps.claimLeaseMs ?? LEASE_MS;
}
/** A source's lister lease on a shared ledger, unless configured (`leaseTime`). */
const DEFAULT_LISTER_LEASE_MS = 30_000;
/** Batches a non-lister takes in one cycle (run-once drains; the daemon takes one). */
const MAX_FOLLOWER_BATCHES = 10_000;
/** The remote file changed under the download (it grew, or its validator moved): settle again. */
const CHANGED_CODES = new Set([
  'POLLER_LANDING_SIZE_GREW',
  'POLLER_HTTP_CHANGED',
  'POLLER_S3_CHANGED',
  'POLLER_WIS2_SUPERSEDED',
]);
/** Quick retries inside one cycle for a broken transfer before it waits for a later cycle. */
const IN_CYCLE_ATTEMPTS = 3;
/** A server's Retry-After up to this long is waited out inside the cycle; a longer one, by a later cycle. */
const IN_CYCLE_MAX_WAIT_MS = 5_000;

export async function runCycle(
  src: SourceConfig,
  source: Source,
  deps: CycleDeps,
  opts: CycleOptions,
): Promise<CycleSummary> {
  // Every transfer, listing and pool wait of every source listens on the shared signal; Node's
  // default of 10 listeners before a leak warning is far below a normal cycle's count.
  setMaxListeners(MAX_SIGNAL_LISTENERS, opts.signal, ...(opts.drainSignal ? [opts.drainSignal] : []));
  const now = deps.now ?? Date.now;
  const log = deps.log.child({ source: src.name });
  const summary: CycleSummary = {
    name: src.name,
    listed: 0,
    new: 0,
    fetched: 0,
    bytes: 0,
    processed: 0,
    failed: 0,
    skipped: 0,
    settling: 0,
    rejected: 0,
    batches: 0,
    readyLeft: 0,
  };
  const emit = safeEvents(deps.events, log);
  // Files moved into the `after: { move }` directory must not come back as new files.
  const moveDir = src.after?.action === 'move' ? [src.after.dir, `${src.after.dir}/**`] : [];
  const globs = new GlobFilter(src.include, [...src.exclude, ...moveDir]);
  // Unsafe names pass the filter so that they are recorded as rejected, not silently dropped.
  const filter = {
    matches: (p: string) => unsafeRemotePathReason(p) !== undefined || globs.matches(p),
    shouldDescend: (p: string) => unsafeRemotePathReason(p) === undefined && globs.shouldDescend(p),
  };
  const started = now();

  // A shared ledger: one instance lists each source (lease with an epoch); the others claim the
  // due files the lister recorded. A ledger of one host (SQLite) always lists.
  const shared = !opts.dryRun && hasSharedListing(deps.ledger) ? deps.ledger : undefined;
  let lister: { owner: string; epoch: number } | undefined;
  if (shared) {
    const epoch = await shared.acquireLister(
      src.name,
      deps.owner,
      now(),
      deps.listerLeaseMs ?? DEFAULT_LISTER_LEASE_MS,
    );
    if (epoch !== null) lister = { owner: deps.owner, epoch };
  }
  const follower = shared !== undefined && lister === undefined && !opts.listOnce;
  let ready: FileRecord[];
  try {
    ready = follower ? [] : await listAndSettle(src, source, filter, deps, opts, summary, emit, log, lister);
    if (!opts.dryRun) await deps.ledger.recordPoll(src.name, src.displayUrl, true, null, now());
    emit.polled?.(src.name, true);
  } catch (thrown) {
    const err = coerceError(thrown);
    if (opts.signal.aborted) throw err;
    if (errorCode(err) === 'POLLER_LEDGER_LISTER_LOST') {
      // Fenced off: another instance took the lease while this one listed; it records, not us.
      log.warn({ event: 'lister.lost', err: { code: errorCode(err), message: err.message } }, err.message);
      return summary;
    }
    const paused = err instanceof SourceError;
    summary.error = { code: errorCode(err), message: err.message, ...(paused && { paused }) };
    if (!opts.dryRun) await deps.ledger.recordPoll(src.name, src.displayUrl, false, err.message, now());
    emit.polled?.(src.name, false);
    log.error(
      { event: paused ? 'source.paused' : 'source.list_failed', err: { code: errorCode(err), message: err.message } },
      `${src.name}: ${err.message}`,
    );
    // Quiet times run out whether or not the source answers: declare and run what is due.
    await volumeStage(src, deps, emit, opts, summary, log);
    return summary;
  }
  if (opts.dryRun) {
    summary.skipped = summary.listed - ready.length;
    return summary;
  }

  // Newest first: the latest radar volume matters more than the backlog.
  ready.sort((a, b) => b.mtimeMs - a.mtimeMs || a.path.localeCompare(b.path));
  const commits = new LedgerCommits(deps.ledger, deps.owner, now);
  let pausedBy: SourceError | undefined;
  const stopped = () => pausedBy !== undefined || opts.signal.aborted || opts.drainSignal?.aborted === true;
  const processingCtx: CycleProcessing = { src, source, deps, summary, emit, log, signal: opts.signal, commits };
  const claimedTotal = { files: 0, bytes: 0 };
  let taken = 0;
  const fetchClaimed = async (claimed: readonly FileRecord[]) => {
    claimedTotal.files += claimed.length;
    claimedTotal.bytes += claimed.reduce((n, c) => n + c.sizeBytes, 0);
    emit.claimed?.(src.name, claimedTotal.files, claimedTotal.bytes);
    const paused = await fetchBatch(processingCtx, claimed, opts, stopped);
    pausedBy ??= paused;
  };
  try {
    // The cap bounds one batch (its claims, leases and memory), not the cycle.
    while (taken < ready.length && !stopped()) {
      const batch = ready.slice(taken, taken + src.maxFilesPerPoll);
      taken += batch.length;
      summary.batches++;
      const claimed = await deps.ledger.claimForFetch(
        batch.map((r) => r.id),
        deps.owner,
        now() + claimLeaseMs(deps),
        now(),
      );
      await fetchClaimed(claimed);
      if (!opts.drain) break;
    }
    // Not the lister: take the due files the lister recorded, a batch at a time.
    let followerFull = false;
    for (let batch = 0; follower && shared && batch < MAX_FOLLOWER_BATCHES && !stopped(); batch++) {
      const claimed = await shared.claimDueForFetch(
        src.name,
        deps.owner,
        now() + claimLeaseMs(deps),
        now(),
        src.maxFilesPerPoll,
      );
      followerFull = claimed.length === src.maxFilesPerPoll;
      if (claimed.length === 0) break;
      summary.batches++;
      await fetchClaimed(claimed);
      if (!opts.drain) break;
    }
    // A full batch: more are likely due, and the daemon comes back at once rather than at the next tick.
    summary.readyLeft = follower ? (followerFull ? 1 : 0) : ready.length - taken;
    summary.skipped = Math.max(0, summary.listed - claimedTotal.files);
    // Files fetched earlier whose processing is due (retries, or a crash between fetch and process).
    if (!opts.drainSignal?.aborted) await processDue(processingCtx, started);
  } finally {
    commits.flush();
  }
  // A version that moved while settling leaves its old partial behind; it is never resumed
  // (the version is in the name) and is removed here, after a cycle that fetched.
  if (claimedTotal.files > 0) await sweepPartials(deps.landingRoot, await deps.ledger.liveFetches());
  if (pausedBy) {
    summary.error = { code: pausedBy.code, message: pausedBy.message, paused: true };
    log.error(
      { event: 'source.paused', err: { code: pausedBy.code, message: pausedBy.message } },
      `${src.name}: ${pausedBy.message}`,
    );
    await deps.ledger.recordPoll(src.name, src.displayUrl, false, pausedBy.message, now());
  }
  await volumeStage(src, deps, emit, opts, summary, log);
  log.info({ event: 'cycle.finished', durationMs: now() - started, ...withoutName(summary) }, 'cycle finished');
  return summary;
}

/** The volume stage after the files of the cycle landed (and their file plugins ran). */
async function volumeStage(
  src: SourceConfig,
  deps: CycleDeps,
  emit: CycleEvents,
  opts: CycleOptions,
  summary: CycleSummary,
  log: Logger,
): Promise<void> {
  // A graceful stop starts no volume plugin: the next start (or another process) runs what is due.
  if (!src.volumes || opts.dryRun || opts.signal.aborted || opts.drainSignal?.aborted) return;
  try {
    summary.volumes = await runVolumeStage(
      src,
      { ...deps, events: emit },
      opts.drainSignal ? AbortSignal.any([opts.signal, opts.drainSignal]) : opts.signal,
    );
  } catch (thrown) {
    if (opts.signal.aborted) return;
    const err = coerceError(thrown);
    // The ledger holds what is left; the next cycle (or the volume timer) takes it up again.
    log.error(
      { event: 'volume.stage_failed', err: { code: errorCode(err), message: err.message } },
      `volume stage failed: ${err.message}`,
    );
  }
}

/**
 * Fetch one batch of claimed files (each processed as soon as it is committed); resolves with the
 * SourceError that paused the source, if one did.
 */
async function fetchBatch(
  p: CycleProcessing,
  claimed: readonly FileRecord[],
  opts: CycleOptions,
  stopped: () => boolean,
): Promise<SourceError | undefined> {
  const { src, source, deps, summary, emit, log, commits } = p;
  const now = deps.now ?? Date.now;
  // A claim another process took over (its lease ran out, or a shared ledger's sweep gave it
  // back) stops its transfer: the new owner fetches the file, and this one must not keep
  // downloading it. One controller per claim (no AbortSignal.any per file); the cycle's own
  // signal aborts them all through one listener.
  const claimAborts = new Map<number, AbortController>();
  const abortAll = () => {
    for (const c of claimAborts.values()) c.abort(opts.signal.reason);
  };
  opts.signal.addEventListener('abort', abortAll, { once: true });
  const leases = new LeaseKeeper(
    deps,
    claimed.map((c) => c.id),
    (lost) => {
      log.warn(
        { event: 'claim.lost', files: lost.length },
        `${lost.length} claim(s) were taken over by another process: their transfers stop; the new owner fetches them`,
      );
      for (const id of lost) claimAborts.get(id)?.abort(new Error('the claim was taken over'));
    },
  );
  const perSource = pLimit(src.concurrency);
  // Files in flight (transferring or finishing): bounded, so open files and memory stay bounded.
  const inFlight = pLimit(src.concurrency * 2);
  let pausedBy: SourceError | undefined;
  const isStopped = () => pausedBy !== undefined || stopped();
  // A transfer holds a connection (per source) and a global transfer slot; a file waiting for
  // one when the cycle stops (pause, drain, shutdown) is given back without an attempt.
  const transferSlot = <T>(work: () => Promise<T>): Promise<T> =>
    perSource(() =>
      deps.transferLimit(async () => {
        if (isStopped()) throw STOPPED;
        return work();
      }),
    );
  const processing: Promise<void>[] = [];
  const plugins = deps.runner;
  try {
    await Promise.all(
      claimed.map((rec) =>
        inFlight(async () => {
          if (isStopped()) {
            await deps.ledger.releaseFetch([rec.id], deps.owner, now());
            return;
          }
          // A file no plugin wants is done once it has landed: one commit, no processing pass.
          const done = wantedByNoPlugin(plugins, src.name, rec, deps.landingRoot);
          const claimAbort = new AbortController();
          if (opts.signal.aborted) claimAbort.abort(opts.signal.reason);
          claimAborts.set(rec.id, claimAbort);
          const ok = await fetchOne(src, source, rec, deps, claimAbort.signal, summary, emit, log, transferSlot, {
            commits,
            done,
          }).catch((err: unknown) => {
            if (err instanceof SourceError) pausedBy ??= err;
            return false;
          });
          claimAborts.delete(rec.id);
          leases.drop(rec.id);
          if (!ok) return;
          if (done) {
            summary.processed++;
            emit.processed?.(src.name, rec.path, 'processed');
            if (src.after) processing.push(applyAfter(src, source, rec, opts.signal, log));
          } else processing.push(processIds(p, [rec.id]));
        }),
      ),
    );
    commits.flush();
    await Promise.all(processing);
  } finally {
    leases.stop();
    opts.signal.removeEventListener('abort', abortAll);
  }
  return pausedBy;
}

function wantedByNoPlugin(runner: PluginRunner, source: string, rec: FileRecord, landingRoot: string): boolean {
  let localPath: string;
  try {
    localPath = landingPathFor(landingRoot, source, rec.path);
  } catch {
    return false; // the landing refuses it with its own error
  }
  const file = { localPath, remotePath: rec.path, source, sizeBytes: rec.sizeBytes, mtimeMs: rec.mtimeMs, attempt: 1 };
  return runner.pluginsFor(file).length === 0;
}

async function listAndSettle(
  src: SourceConfig,
  source: Source,
  filter: WalkFilter,
  deps: CycleDeps,
  opts: CycleOptions,
  summary: CycleSummary,
  emit: CycleEvents,
  log: Logger,
  lister?: { owner: string; epoch: number },
): Promise<FileRecord[]> {
  const now = deps.now ?? Date.now;
  const listings = opts.settleWithinCycle ? src.stableListings : 1;
  let ready: FileRecord[] = [];
  for (let round = 0; round < listings; round++) {
    if (round > 0) await sleep(src.settleDelayMs, opts.signal);
    const walk = await walkSource(source, filter, {
      signal: opts.signal,
      concurrency: src.maxConnections,
      ...(opts.startDirs && { startDirs: opts.startDirs }),
      known: (p) => knownVersion(deps.ledger, src.name, p),
    });
    if (walk.truncated)
      log.warn(
        { event: 'listing.truncated', files: walk.files.length },
        'listing cut short at the walk limits; some files may be missed',
      );
    const t = now();
    const observations = toObservations(walk.files, src, opts, t);
    emit.listed?.(src.name, observations.length, walk.truncated);
    const result = await deps.ledger.observe(src.name, observations, {
      nowMs: t,
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
    log.debug({ event: 'listing.observed', round, ...result.counts, ready: ready.length }, 'listing observed');
    // Another listing only helps files that are settling and not too young for minAge.
    if (result.counts.settling === 0 || opts.dryRun) break;
  }
  return ready;
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

/** Fetch one claimed version, retrying transient failures a few times. Resolves true when landed. */
async function fetchOne(
  src: SourceConfig,
  source: Source,
  rec: FileRecord,
  deps: CycleDeps,
  signal: AbortSignal,
  summary: CycleSummary,
  emit: CycleEvents,
  log: Logger,
  transferSlot?: <T>(work: () => Promise<T>) => Promise<T>,
  batch?: { commits: LedgerCommits; done: boolean },
): Promise<boolean> {
  const now = deps.now ?? Date.now;
  // A child logger costs a serialisation of its bindings: made only when something goes wrong.
  let child: Logger | undefined;
  const flog = () => (child ??= log.child({ path: rec.path, version: formatVersion(rec) }));
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    emit.fetchStarted?.(src.name, rec.path, rec.sizeBytes);
    try {
      const integrity = source.integrity?.(rec.path, rec);
      const landed = await landFile(source, {
        landingRoot: deps.landingRoot,
        sourceName: src.name,
        fileId: rec.id,
        entry: rec,
        signal,
        onBytes: (n) => emit.bytes?.(src.name, n),
        ...(transferSlot && { transferSlot }),
        ...(deps.hashLanded && { sha512: true }),
        ...(integrity && { integrity }),
      });
      // After the rename (and its directory fsync): a crash before this commit is recovered by
      // the landed-file check on the next attempt.
      const item: FetchedItem = {
        id: rec.id,
        localPath: landed.localPath,
        ...(batch?.done && { done: true }),
        ...(landed.sha512 && { sha512: landed.sha512 }),
      };
      const lost = batch
        ? await batch.commits.fetched.add(item)
        : (await deps.ledger.markFetched([item], deps.owner, now())).length > 0;
      if (lost) {
        warnClaimLost(flog(), 'mark fetched');
        return false;
      }
      const durationMs = performance.now() - started;
      summary.fetched++;
      summary.bytes += landed.bytesTransferred;
      emit.fetched?.(src.name, rec.path, rec.sizeBytes, durationMs, rec.mtimeMs);
      log.info(
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
    } catch (thrown) {
      const err = coerceError(thrown);
      if (signal.aborted || thrown === STOPPED) {
        await deps.ledger.releaseFetch([rec.id], deps.owner, now());
        return false;
      }
      const code = errorCode(err);
      if (err instanceof SourceError) {
        await deps.ledger.markFetchFailed(
          [
            {
              id: rec.id,
              failure: {
                errorCode: code,
                message: err.message,
                nextRetryMs: now(),
                quarantine: false,
                notCounted: true,
              },
            },
          ],
          deps.owner,
          now(),
        );
        throw err;
      }
      if (CHANGED_CODES.has(code)) {
        // Not the file's fault: it is still being written. Settle again.
        await deps.ledger.releaseFetch([rec.id], deps.owner, now());
        flog().warn(
          { event: 'file.changed', err: { code, message: err.message } },
          'file changed during download; waiting for it to settle',
        );
        return false;
      }
      const retryable = isRetryable(err);
      // The server said when to come back (Retry-After): never sooner; past a short wait, a later cycle.
      const askedWaitMs = err instanceof ThrottledError ? err.retryAfterMs : undefined;
      if (retryable && attempt < IN_CYCLE_ATTEMPTS && (askedWaitMs ?? 0) <= IN_CYCLE_MAX_WAIT_MS) {
        const delayMs = Math.max(askedWaitMs ?? 0, backoffDelayMs(attempt, { baseMs: 500, maxMs: 5_000 }));
        flog().warn(
          { event: 'file.retried', attempt, delayMs, err: { code, message: err.message } },
          'fetch failed; retrying',
        );
        try {
          await sleep(delayMs, signal);
        } catch {
          await deps.ledger.releaseFetch([rec.id], deps.owner, now());
          return false;
        }
        continue;
      }
      const attempts = rec.fetchAttempts + 1;
      const throttled = err instanceof ThrottledError;
      const quarantine = !throttled && (!retryable || attempts >= src.maxAttempts);
      const nextRetryMs =
        now() +
        Math.max(askedWaitMs ?? 0, backoffDelayMs(attempts, { baseMs: deps.retryBaseMs, maxMs: deps.retryMaxMs }));
      await deps.ledger.markFetchFailed(
        [
          {
            id: rec.id,
            failure: { errorCode: code, message: err.message, nextRetryMs, quarantine, notCounted: throttled },
          },
        ],
        deps.owner,
        now(),
      );
      summary.failed++;
      emit.fetchFailed?.(src.name, rec.path, code, quarantine);
      flog().error(
        { event: quarantine ? 'file.quarantined' : 'file.fetch_failed', attempts, err: { code, message: err.message } },
        quarantine ? `fetch failed for good: ${err.message}` : `fetch failed: ${err.message}`,
      );
      return false;
    }
  }
}

/**
 * This process's lease on the file expired and another process took it over; that process
 * finishes the file, so nothing is written here.
 */
function warnClaimLost(log: Logger, what: string): void {
  log.warn(
    {
      event: 'file.claim_lost',
      err: { code: 'POLLER_LEDGER_CLAIM_LOST', message: `cannot ${what}: the claim was lost` },
    },
    `cannot ${what}: the claim was lost (its lease expired and another process took the file over)`,
  );
}

function isRetryable(err: Error): boolean {
  if (err instanceof PollerError) return err.retryable;
  // Unclassified errors from the filesystem or a socket: worth another try, bounded by maxAttempts.
  return !(err instanceof TypeError || err instanceof RangeError);
}

/** What processing inside one cycle needs; built once per cycle. */
interface CycleProcessing {
  src: SourceConfig;
  source: Source;
  deps: CycleDeps;
  summary: CycleSummary;
  emit: CycleEvents;
  log: Logger;
  signal: AbortSignal;
  commits: LedgerCommits;
}

/**
 * The cycle's group commits, one per stage: concurrent files meet in one ledger call (one
 * transaction, or one round trip for a networked ledger) instead of one each.
 */
export class LedgerCommits {
  /** Resolves true when the claim was lost. */
  readonly fetched: GroupCommit<FetchedItem, boolean>;
  readonly claimProcess: GroupCommit<number, FileRecord | undefined>;
  readonly runs: GroupCommit<number, PluginRunRecord[]>;
  readonly running: GroupCommit<PluginRunStart, number>;
  readonly finish: GroupCommit<ProcessingResult, FileState | 'claim-lost'>;

  /** `direct`: every item is written at once, alone (a command processing a few files). */
  constructor(ledger: Ledger, owner: string, now: () => number, direct = false) {
    const opts = direct ? { maxDelayMs: 0, maxItems: 1 } : undefined;
    this.fetched = new GroupCommit(async (items) => {
      const lost = new Set(await ledger.markFetched(items, owner, now()));
      return items.map((i) => lost.has(i.id));
    }, opts);
    this.claimProcess = new GroupCommit(async (ids) => {
      const got = new Map(
        (await ledger.claimIdsForProcessing(ids, owner, now() + LEASE_MS, now())).map((r) => [r.id, r]),
      );
      return ids.map((id) => got.get(id));
    }, opts);
    this.runs = new GroupCommit(async (ids) => {
      const runs = await ledger.pluginRuns(ids);
      return ids.map((id) => runs.get(id) ?? []);
    }, opts);
    this.running = new GroupCommit((starts) => ledger.markPluginRunning(starts, now()), opts);
    this.finish = new GroupCommit((results) => ledger.finishProcessing(results, owner, now()), opts);
  }

  flush(): void {
    this.fetched.flush();
    this.claimProcess.flush();
    this.runs.flush();
    this.running.flush();
    this.finish.flush();
  }
}

/**
 * Process files whose plugin retries were due when the cycle started (or that a crash left
 * fetched but unprocessed). Due-ness is judged at `cycleStartMs`, so a run that fails during
 * this cycle waits for a later one instead of spinning here.
 */
async function processDue(p: CycleProcessing, cycleStartMs: number): Promise<void> {
  const now = p.deps.now ?? Date.now;
  for (let batch = 0; batch < 100; batch++) {
    const recs = await p.deps.ledger.claimForProcessing(
      p.src.name,
      p.deps.owner,
      now() + claimLeaseMs(p.deps),
      cycleStartMs,
      256,
    );
    if (recs.length === 0) return;
    const work = Promise.all(recs.map((r) => processAndAfter(p, r)));
    p.commits.flush();
    await work;
  }
}

/** Process files this cycle just landed. */
async function processIds(p: CycleProcessing, ids: number[]): Promise<void> {
  const recs = await Promise.all(ids.map((id) => p.commits.claimProcess.add(id)));
  await Promise.all(recs.map((r) => r && processAndAfter(p, r)));
}

/** Process a claimed file; once it is processed (and committed), apply the source's `after:`. */
async function processAndAfter(p: CycleProcessing, rec: FileRecord): Promise<void> {
  const state = await processClaimed(rec, p.src, p.deps, p.summary, p.emit, p.log, undefined, p.commits);
  if (state === 'processed') await applyAfter(p.src, p.source, rec, p.signal, p.log);
}

/**
 * Run the plugins that still owe this file a success (or only `onlyPlugin`, for `poller retry
 * --plugin`); record every outcome in one transaction.
 */
export async function processClaimed(
  rec: FileRecord,
  src: Pick<SourceConfig, 'name'>,
  deps: Pick<CycleDeps, 'ledger' | 'runner' | 'owner' | 'retryBaseMs' | 'retryMaxMs' | 'now' | 'events'>,
  summary: Pick<CycleSummary, 'processed' | 'failed'>,
  emit: CycleEvents,
  log: Logger,
  onlyPlugin?: string,
  commits = new LedgerCommits(deps.ledger, deps.owner, deps.now ?? Date.now, true),
): Promise<FileState | 'claim-lost'> {
  const now = deps.now ?? Date.now;
  if (!(await isAlreadyLanded(rec.localPath as string, rec))) {
    // A newer version of the file landed on the same path before this one's plugins ran.
    if ((await deps.ledger.markSuperseded([rec.id], deps.owner, now())).length > 0) {
      warnClaimLost(log.child({ path: rec.path, version: formatVersion(rec) }), 'mark superseded');
      return 'claim-lost';
    }
    log.info(
      { event: 'file.superseded', path: rec.path, version: formatVersion(rec) },
      'superseded by a newer version',
    );
    return 'superseded';
  }
  const runs = await commits.runs.add(rec.id);
  const previous = new Map(runs.map((r) => [r.plugin, r]));
  const base: Omit<PluginFile, 'attempt'> = {
    localPath: rec.localPath as string,
    remotePath: rec.path,
    source: src.name,
    sizeBytes: rec.sizeBytes,
    mtimeMs: rec.mtimeMs,
  };
  const outcomes: PluginOutcome[] = [];
  for (const p of deps.runner.pluginsFor({ ...base, attempt: 1 })) {
    if (onlyPlugin !== undefined && p.name !== onlyPlugin) continue;
    const plan = planRun(p.name, previous.get(p.name), p.maxAttempts, now());
    if (plan === 'skip') continue;
    if (plan !== 'run') {
      outcomes.push(plan);
      continue;
    }
    const attempt = await commits.running.add({ fileId: rec.id, plugin: p.name });
    const out = await deps.runner.run(p, { ...base, attempt });
    emit.pluginRan?.(p.name, out.ok, out.durationMs);
    outcomes.push(
      outcomeOf(p.name, out, attempt, p.maxAttempts, now(), { baseMs: deps.retryBaseMs, maxMs: deps.retryMaxMs }),
    );
  }
  const state = await commits.finish.add({ id: rec.id, outcomes });
  if (state === 'claim-lost') {
    warnClaimLost(log.child({ path: rec.path, version: formatVersion(rec) }), 'finish processing');
    return state;
  }
  if (state === 'processed') summary.processed++;
  else summary.failed++;
  emit.processed?.(src.name, rec.path, state);
  if (state !== 'processed') {
    log.warn(
      {
        event: state === 'quarantined' ? 'file.quarantined' : 'file.process_failed',
        path: rec.path,
        version: formatVersion(rec),
      },
      `plugins failed on ${rec.path}`,
    );
  }
  return state;
}

/** A run ended by the death of its worker, child or poller (see the ledger's crash recovery). */

/** Codes of a remote file that is not there: a delete or move of it has nothing left to do. */
const GONE_CODES = new Set([
  'POLLER_FTP_NOT_AVAILABLE',
  'POLLER_SFTP_NOT_FOUND',
  'POLLER_LOCAL_NOT_FOUND',
  'POLLER_S3_NOT_FOUND',
]);

/**
 * The remote action of `after:`, run only once the file is processed and the ledger committed.
 * A failure is logged, never the file's: the data is safe in the landing tree and the ledger.
 */
async function applyAfter(
  src: SourceConfig,
  source: Source,
  rec: FileRecord,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const after = src.after;
  if (!after) return;
  const flog = log.child({ path: rec.path, version: formatVersion(rec) });
  try {
    if (after.action === 'delete') {
      if (!source.remove) throw new Error(`${src.protocol} sources cannot delete files`);
      await source.remove(rec.path, { signal });
    } else {
      if (!source.rename) throw new Error(`${src.protocol} sources cannot move files`);
      // Flat into the directory: radar feeds name files uniquely by station and time.
      const to = `${after.dir}/${rec.path.slice(rec.path.lastIndexOf('/') + 1)}`;
      await source.rename(rec.path, to, { signal });
    }
    flog.info(
      { event: 'file.after_done', action: after.action },
      `remote file ${after.action === 'delete' ? 'deleted' : 'moved'}`,
    );
  } catch (thrown) {
    const err = coerceError(thrown);
    if (GONE_CODES.has(errorCode(err))) return;
    flog.warn(
      { event: 'file.after_failed', action: after.action, err: { code: errorCode(err), message: err.message } },
      `after ${after.action}: ${err.message}`,
    );
  }
}

/** Keeps the leases of in-flight claims alive during long transfers. */
class LeaseKeeper {
  readonly #ids: Set<number>;
  readonly #timer: NodeJS.Timeout;
  /** `onLost`: claims the renewal found taken over by another owner. */
  constructor(deps: CycleDeps, ids: number[], onLost?: (ids: number[]) => void) {
    this.#ids = new Set(ids);
    const now = deps.now ?? Date.now;
    const leaseMs = claimLeaseMs(deps);
    this.#timer = setInterval(() => {
      if (this.#ids.size === 0) return;
      deps.ledger
        .renewLeases([...this.#ids], deps.owner, now() + leaseMs)
        .then((lost) => {
          // Only claims still in flight: a file that finished meanwhile was dropped, not lost.
          const stillHeld = lost.filter((id) => this.#ids.has(id));
          for (const id of stillHeld) this.#ids.delete(id);
          if (stillHeld.length > 0) onLost?.(stillHeld);
        })
        // The ledger unreachable: the lease runs on; if it expires, the commit is refused.
        .catch((err: unknown) => deps.log.warn({ err }, 'lease renewal failed'));
    }, leaseMs / 3);
    this.#timer.unref();
  }
  drop(id: number): void {
    this.#ids.delete(id);
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}

function safeEvents(events: CycleEvents | undefined, log: Logger): CycleEvents {
  if (!events) return {};
  const wrapped: CycleEvents = {};
  for (const [key, fn] of Object.entries(events)) {
    if (typeof fn !== 'function') continue;
    (wrapped as Record<string, unknown>)[key] = (...args: unknown[]) => {
      try {
        (fn as (...a: unknown[]) => void).apply(events, args);
      } catch (err) {
        log.debug({ err, hook: key }, 'event hook threw; ignored');
      }
    };
  }
  return wrapped;
}

function withoutName(s: CycleSummary): Record<string, unknown> {
  const { name: _name, volumes, ...rest } = s;
  // The log line carries counts; `poller volumes` lists the collecting ones.
  if (!volumes) return rest;
  const { collecting, ...counts } = volumes;
  return { ...rest, volumes: { ...counts, collecting: collecting.length } };
}
