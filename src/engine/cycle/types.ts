/** The cycle's public shapes: what a caller passes in (deps, options, hooks) and gets back (summary). */
import type { LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import type { Ledger } from '../../ledger/ledger.js';
import type { PluginRunner } from '../../plugins/runner.js';
import type { GatherVolume } from '../volume-gather.js';
import type { VolumeEvents, VolumeStageSummary } from '../volume-stage.js';

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
  listed?(source: string, files: number, truncated: boolean, unparsedLines?: number): void;
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
  /** How long a claim on a file lasts unless renewed (renewed every third of it). @default LEASE_MS (context.ts) */
  claimLeaseMs?: number;
  /** A landing root per host: a claimed volume's members fetched here when they landed elsewhere. */
  gatherVolume?: GatherVolume;
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
