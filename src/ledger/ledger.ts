/**
 * The ledger: the state that makes "nothing missed, nothing fetched twice" true. One row per
 * (source, remote path, version); plugin runs are rows of their own. Asynchronous so that a
 * networked backend can slot in behind it; nothing outside `ledger/` writes SQL.
 *
 * States of a file version:
 *   seen → fetching → fetched → processing → processed
 *                 ↘ failed(stage fetch)  ↘ failed(stage process) → … → quarantined
 *   rejected: a hostile or unusable remote name; recorded, never fetched.
 *   superseded: fetched, but a newer version landed on its path before its plugins ran; the
 *   newer version is processed instead (the landing tree holds one version per path).
 *   gone: removed upstream, missing from several complete listings in a row (removed-upstream.ts,
 *   a role of its own); listed again, it is `seen` and fetched anew.
 *
 * The ledger is the composition of its roles; a consumer asks for the role it uses:
 *   FileTransitions  the engine's writes (listing, claims, landing, plugin runs, recovery)
 *   LedgerQueries    reads for the CLI, the status page and `/metrics`
 *   EventOutbox      the event outbox the dispatcher drains
 *   LedgerRetention  pruning of done versions
 *   LedgerVolumes    the radar-volume ledger
 * The records they take and give are in `records.ts`; the decisions behind the transitions are
 * the pure planners of `core/`, which every backend only executes.
 */
import type {
  ActivitySlot,
  ClaimLost,
  EventFact,
  FetchedItem,
  FetchFailedItem,
  FileQuery,
  FileRecord,
  FileState,
  ForgetFilter,
  InstanceRecord,
  LedgerStats,
  Observation,
  ObserveOptions,
  ObserveResult,
  OutboxEvent,
  OutboxRoute,
  OutboxStats,
  PluginRunRecord,
  PluginRunStart,
  PluginRunSuccess,
  ProcessingResult,
  ProductEventKind,
  PruneResult,
  PruneRules,
  RetryFilter,
  SourceStatus,
  SweepResult,
} from './records.js';
import type { VolumeLedger } from './volume-ledger.js';

export * from './records.js';

/** The transitions of file versions: what the engine (and `retry` / `forget`) writes. */
export interface FileTransitions {
  /** Record one listing of a source (one transaction); returns what is ready to fetch. */
  observe(source: string, observations: readonly Observation[], opts: ObserveOptions): Promise<ObserveResult>;
  /** Atomically take ready versions for fetching; returns only those this owner got. */
  claimForFetch(ids: readonly number[], owner: string, leaseUntilMs: number, nowMs: number): Promise<FileRecord[]>;
  /** Extends this owner's claims; returns the ids it no longer holds (taken over), whose work should stop. */
  renewLeases(ids: readonly number[], owner: string, leaseUntilMs: number): Promise<ClaimLost>;
  /**
   * Files complete at their `localPath`, committed in one transaction. A row whose claim this
   * owner no longer holds (lease expired, taken over) is left alone; its id is returned.
   */
  markFetched(items: readonly FetchedItem[], owner: string, nowMs: number): Promise<ClaimLost>;
  /** Fetches that failed, or whose remote changed under them, in one transaction. */
  markFetchFailed(items: readonly FetchFailedItem[], owner: string, nowMs: number): Promise<ClaimLost>;
  /** Put claimed versions back to `seen` without counting an attempt (shutdown, grew during download). */
  releaseFetch(ids: readonly number[], owner: string, nowMs: number): Promise<void>;
  /** Atomically take fetched (or failed-in-a-plugin and due) files of a source for processing. */
  claimForProcessing(
    source: string | undefined,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<FileRecord[]>;
  /** Take specific fetched files for processing (the ones this owner just landed). */
  claimIdsForProcessing(
    ids: readonly number[],
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
  ): Promise<FileRecord[]>;
  /** The landed bytes are a newer version's: these versions will not be processed. */
  markSuperseded(ids: readonly number[], owner: string, nowMs: number): Promise<ClaimLost>;
  /**
   * Record that these runs start, in one transaction, before any of them runs: the attempt
   * counter is crash-safe (a run that dies with the process has used its attempt). Returns
   * each run's attempt number, in order.
   */
  markPluginRunning(runs: readonly PluginRunStart[], nowMs: number): Promise<number[]>;
  /**
   * Record runs that succeeded while their file's other plugins have yet to run, where this owner
   * still holds the file: a poller that dies in a later plugin (or the host) does not run these
   * again. `finishProcessing` writes them once more with the verdict.
   */
  markPluginSucceeded(runs: readonly PluginRunSuccess[], owner: string, nowMs: number): Promise<void>;
  /**
   * Record the plugin outcomes of processing passes and each file's resulting state, in one
   * transaction. Returns each file's state in order, or `claim-lost` where this owner no longer
   * held the file (nothing is written for it).
   */
  finishProcessing(
    results: readonly ProcessingResult[],
    owner: string,
    nowMs: number,
  ): Promise<Array<FileState | 'claim-lost'>>;
  /** Give up claims whose lease expired or whose owner is gone. Returns how many rows were reset. */
  recoverStale(
    nowMs: number,
    isOwnerGone: (owner: string) => boolean,
  ): Promise<{ fetches: number; processing: number }>;
  /**
   * Make failed (and with `includeQuarantined`, quarantined) files due now, only for the runs of
   * `plugin` when given. Returns the ids of the files made due.
   */
  scheduleRetry(filter: RetryFilter, nowMs: number): Promise<number[]>;
  /** Forget versions so they are fetched again when listed. */
  forget(filter: ForgetFilter): Promise<number>;
  /** The outcome of one poll of a source (its listing), for `status`. */
  recordPoll(source: string, displayUrl: string, ok: boolean, error: string | null, nowMs: number): Promise<void>;
}

/** Reads: the CLI, the status page, `/metrics` and the engine's start. */
export interface LedgerQueries {
  get(id: number): Promise<FileRecord | undefined>;
  history(source: string, path: string): Promise<FileRecord[]>;
  files(query: FileQuery): Promise<FileRecord[]>;
  /** Plugin runs of each file (files without runs map to an empty list). */
  pluginRuns(fileIds: readonly number[]): Promise<Map<number, PluginRunRecord[]>>;
  status(): Promise<SourceStatus[]>;
  /**
   * Files fetched per source per slot over the last `slots × slotMs` before `nowMs`, by fetch
   * time; slots without a fetch are left out. One aggregate query (the status page's chart).
   */
  activity(nowMs: number, slotMs: number, slots: number): Promise<ActivitySlot[]>;
  /** Rows and size of the ledger, for `status` and `/metrics`. */
  stats(): Promise<LedgerStats>;
  /** Versions that may still be fetched (their partial files can be resumed). */
  liveFetches(): Promise<Array<{ id: number; sizeBytes: number; mtimeMs: number }>>;
}

/** The event outbox: written by the transitions, in their transactions; drained by the dispatcher. */
export interface EventOutbox {
  /**
   * The sinks that want events. With none (the default) no event is written: the outbox costs
   * nothing. Set once at start (and on a config reload); applies to later transitions.
   */
  setOutbox(routes: readonly OutboxRoute[]): void;
  /** The oldest unsent events of a sink, in order. */
  pendingEvents(sink: string, limit: number): Promise<OutboxEvent[]>;
  /** The broker acknowledged these events (by `seq`). */
  markEventsSent(sink: string, seqs: readonly number[], nowMs: number): Promise<void>;
  /** Backlog per sink (sinks with rows in the outbox, and every routed sink). */
  outboxStats(): Promise<OutboxStats[]>;
  /** Delete sent events acknowledged before `beforeMs`; unsent events are never pruned. */
  pruneSentEvents(beforeMs: number): Promise<number>;
  /**
   * A product went late or is on time again (`expect:`): one row per sink that wants it, in one
   * transaction of its own (no file transition goes with it). Nothing when no sink wants it.
   */
  emitProductEvent(kind: ProductEventKind, source: string, fact: EventFact, nowMs: number): Promise<void>;
}

/** Retention of done file versions. */
export interface LedgerRetention {
  /**
   * Delete one batch (at most `limit` versions, one short transaction) of done versions that
   * retention allows (`core/guards.ts` `isPrunable`). In-flight and plugin-retrying rows are kept.
   */
  prune(
    rules: PruneRules,
    opts: { readonly limit: number; readonly nowMs: number; readonly dryRun?: boolean },
  ): Promise<PruneResult>;
}

export interface LedgerVolumes {
  /** Radar volumes (README "Radar volumes"), in every backend. */
  readonly volumes: VolumeLedger;
}

export interface Ledger extends FileTransitions, LedgerQueries, EventOutbox, LedgerRetention, LedgerVolumes {
  close(): Promise<void>;
  /** A networked ledger: the host in use and the failovers seen (the status page shows them). */
  connection?(): LedgerConnectionStatus;
  /**
   * How long a group commit waits for company before it is written; absent: the engine's
   * default. A networked ledger's round trip costs more CPU than a few ms of waiting.
   */
  readonly commitDelayMs?: number;
}

/** A move of a networked ledger's connections to another host (its primary failed over). */
export interface LedgerSwitch {
  readonly atMs: number;
  readonly from: string;
  readonly to: string;
  /** The error that sent the ledger looking, in one line (a code and a server message, no URL). */
  readonly reason: string;
}

export interface LedgerConnectionStatus {
  /** The host in use, `host:port`. */
  readonly host: string;
  /** Looking for the primary now (statements wait for it). */
  readonly switching: boolean;
  readonly switches: number;
  readonly lastSwitch?: LedgerSwitch;
}

/**
 * What a ledger shared by several hosts adds (PostgreSQL): a heartbeat row per instance, and a
 * sweep that gives back the claims of instances that stopped beating, so another host takes
 * their work over within the lease instead of the claims' own long lease.
 */
export interface InstanceRegistry {
  /** Beat; with `leaseMs`, the lister leases this instance holds are renewed too (it is alive). */
  heartbeat(
    instance: { id: string; owner: string; host: string; pid: number },
    nowMs: number,
    leaseMs?: number,
  ): Promise<void>;
  sweepDead(nowMs: number, leaseMs: number): Promise<SweepResult>;
  instances(): Promise<InstanceRecord[]>;
  /** A clean stop: the row goes at once (its claims were released by the shutdown). */
  leave(id: string): Promise<void>;
}

export function hasInstanceRegistry(l: Ledger): l is Ledger & InstanceRegistry {
  return typeof (l as Partial<InstanceRegistry>).sweepDead === 'function';
}

/**
 * One lister per source on a shared ledger (PostgreSQL): a lease row per source with an epoch
 * (a fencing token: a listing recorded under an older epoch is refused). Readiness lives in the
 * ledger, so instances that do not list still claim the due files of every source.
 */
export interface SharedListing {
  /** The lease's epoch when this owner holds it now (renewed, or taken from an expired holder); null when another does. */
  acquireLister(source: string, owner: string, nowMs: number, leaseMs: number): Promise<number | null>;
  /** Claim up to `limit` due files of a source (ready and seen, or a fetch retry now due), newest first. */
  claimDueForFetch(
    source: string,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<FileRecord[]>;
  /** Who lists each source. */
  listers(): Promise<Array<{ source: string; owner: string; epoch: number; leaseUntilMs: number }>>;
}

export function hasSharedListing(l: Ledger): l is Ledger & SharedListing {
  return typeof (l as Partial<SharedListing>).acquireLister === 'function';
}
