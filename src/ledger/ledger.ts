/**
 * The ledger: the state that makes "nothing missed, nothing fetched twice" true. One row per
 * (source, remote path, version); plugin runs are rows of their own. The interface is
 * asynchronous so that a networked backend can slot in behind it; nothing outside `ledger/`
 * writes SQL.
 *
 * States of a file version:
 *   seen → fetching → fetched → processing → processed
 *                 ↘ failed(stage fetch)  ↘ failed(stage process) → … → quarantined
 *   rejected: a hostile or unusable remote name; recorded, never fetched.
 *   superseded: fetched, but a newer version landed on its path before its plugins ran; the
 *   newer version is processed instead (the landing tree holds one version per path).
 */
import type { EmittedOutput } from '../plugins/api.js';
import type { MtimePrecision, RemoteEntry } from '../sources/source.js';
import type { VolumeLedger } from './volume-ledger.js';

export type FileState =
  | 'seen'
  | 'fetching'
  | 'fetched'
  | 'processing'
  | 'processed'
  | 'failed'
  | 'quarantined'
  | 'rejected'
  | 'superseded';
export type FailedStage = 'fetch' | 'process';
export type PluginRunState = 'running' | 'succeeded' | 'failed' | 'quarantined';

export const FILE_STATES: readonly FileState[] = [
  'seen',
  'fetching',
  'fetched',
  'processing',
  'processed',
  'failed',
  'quarantined',
  'rejected',
  'superseded',
];

export interface FileRecord {
  readonly id: number;
  readonly source: string;
  readonly path: string;
  readonly sizeBytes: number;
  readonly mtimeMs: number;
  readonly mtimePrecision: MtimePrecision;
  readonly state: FileState;
  /** Where a `failed` or `quarantined` file failed. */
  readonly stage: FailedStage | null;
  /** Listings in which this version was seen unchanged. */
  readonly sightings: number;
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  readonly fetchAttempts: number;
  readonly nextRetryMs: number | null;
  readonly errorCode: string | null;
  readonly lastError: string | null;
  readonly localPath: string | null;
  readonly fetchedMs: number | null;
  readonly doneMs: number | null;
  readonly claimedBy: string | null;
  readonly leaseUntilMs: number | null;
  readonly updatedMs: number;
  /** The server's strong ETag for this version (HTTP, S3), when it gave one. */
  readonly etag?: string;
}

export interface PluginRunRecord {
  readonly fileId: number;
  readonly plugin: string;
  readonly state: PluginRunState;
  readonly attempts: number;
  readonly errorCode: string | null;
  readonly lastError: string | null;
  readonly durationMs: number | null;
  readonly nextRetryMs: number | null;
  readonly outputs: readonly EmittedOutput[];
  readonly updatedMs: number;
}

/** A listed entry, or one whose name is unusable (`rejectReason` says why). */
export interface Observation {
  readonly entry: RemoteEntry;
  readonly rejectReason?: string;
}

export interface ObserveOptions {
  readonly nowMs: number;
  /** A file must be this old (by mtime) to be taken. */
  readonly minAgeMs: number;
  /** Unchanged sightings needed before a file is taken. */
  readonly stableListings: number;
  /** A file at least this old at first sight needs no second listing. */
  readonly oldEnoughMs: number;
  /** Classify only: the transaction is rolled back and nothing is recorded. */
  readonly dryRun?: boolean;
  /**
   * A shared ledger: the lister lease this listing was taken under. If another instance took
   * the lease since (a higher epoch), nothing is recorded and POLLER_LEDGER_LISTER_LOST is thrown.
   */
  readonly lister?: { readonly owner: string; readonly epoch: number };
}

export interface ObserveResult {
  /** Versions ready to fetch: stable and old enough, or a failed fetch whose retry is due. */
  readonly ready: readonly FileRecord[];
  readonly counts: {
    readonly listed: number;
    readonly new: number;
    readonly changed: number;
    readonly unchanged: number;
    /** Seen but not yet stable or not yet old enough. */
    readonly settling: number;
    readonly rejected: number;
  };
}

export interface FetchFailure {
  readonly errorCode: string;
  readonly message: string;
  /** Retry at this time; null with `quarantine` false means "back to seen" (no attempt used). */
  readonly nextRetryMs: number | null;
  readonly quarantine: boolean;
  /** The attempt does not count (the source was throttled or paused, not the file's fault). */
  readonly notCounted?: boolean;
}

export interface PluginOutcome {
  readonly plugin: string;
  readonly ok: boolean;
  readonly errorCode?: string;
  readonly message?: string;
  readonly durationMs: number;
  readonly outputs: readonly EmittedOutput[];
  readonly nextRetryMs?: number | null;
  readonly quarantine?: boolean;
  /** The run was cut short by shutdown: it failed, but does not use up an attempt. */
  readonly notCounted?: boolean;
}

/** Ids of rows a batch write skipped because this owner no longer held their claim. */
export type ClaimLost = readonly number[];

export interface FetchedItem {
  readonly id: number;
  readonly localPath: string;
  /**
   * No plugin matches the file: it is `processed` as soon as it has landed, in the same write
   * (no processing claim, no plugin runs).
   */
  readonly done?: boolean;
  /** SHA-512 of the landed bytes, base64; given when an event sink wants it (WNM `integrity`). */
  readonly sha512?: string;
}

export interface FetchFailedItem {
  readonly id: number;
  readonly failure: FetchFailure;
}

export interface PluginRunStart {
  readonly fileId: number;
  readonly plugin: string;
}

export interface ProcessingResult {
  readonly id: number;
  readonly outcomes: readonly PluginOutcome[];
}

export interface FileQuery {
  readonly source?: string;
  readonly state?: FileState;
  /** Substring or exact remote path. */
  readonly path?: string;
  readonly limit?: number;
}

export interface SourceStatus {
  readonly name: string;
  readonly displayUrl: string | null;
  readonly lastPollMs: number | null;
  readonly lastSuccessMs: number | null;
  readonly lastError: string | null;
  readonly counts: Readonly<Partial<Record<FileState, number>>>;
  readonly newestFetchedMtimeMs: number | null;
}

/** Transitions that write an outbox event when a sink wants them. */
export type FileEventKind = 'fetched' | 'processed' | 'failed' | 'quarantined' | 'output';
/**
 * Radar volumes: `volume-complete` / `volume-partial` when a volume version is handed on (data
 * events, like `fetched`), then its volume plugins' outcome as the file kinds do.
 */
export type VolumeEventKind =
  | 'volume-complete'
  | 'volume-partial'
  | 'volume-processed'
  | 'volume-failed'
  | 'volume-quarantined'
  | 'volume-output';
export type EventKind = FileEventKind | VolumeEventKind;
export const EVENT_KINDS: readonly EventKind[] = [
  'fetched',
  'processed',
  'failed',
  'quarantined',
  'output',
  'volume-complete',
  'volume-partial',
  'volume-processed',
  'volume-failed',
  'volume-quarantined',
  'volume-output',
];

export function isVolumeEventKind(kind: EventKind): kind is VolumeEventKind {
  return kind.startsWith('volume-');
}

/** One member file of a volume, as its events announce it. */
export interface VolumeMemberFact {
  readonly member: string;
  readonly fileId: number;
  readonly path: string;
  readonly sizeBytes: number;
  readonly mtimeMs: number;
}

/** The volume of a volume event (the fact's `path` is then the volume key). */
export interface VolumeFact {
  readonly id: number;
  readonly key: string;
  readonly version: number;
  readonly fields: Readonly<Record<string, string>>;
  readonly partial: boolean;
  readonly firstMemberMs: number;
  readonly lastMemberMs: number;
  readonly members: readonly VolumeMemberFact[];
}

/** Which transitions one sink receives; `sources` null means every source. */
export interface OutboxRoute {
  readonly sink: string;
  readonly kinds: readonly EventKind[];
  readonly sources: readonly string[] | null;
}

/**
 * What the ledger records of a transition: facts only. Payloads (WNM, CloudEvents) are built from
 * these by `events/` when sent, so the ledger stays free of any wire format.
 */
export interface EventFact {
  readonly path: string;
  readonly sizeBytes: number;
  readonly mtimeMs: number;
  readonly localPath?: string | null;
  readonly sha512?: string | null;
  /** A newer version of a path that landed before (WNM `update` link instead of `canonical`). */
  readonly update?: boolean;
  readonly stage?: FailedStage | null;
  readonly errorCode?: string | null;
  readonly message?: string | null;
  readonly attempts?: number;
  /** `processed`: the plugin outputs; `output`: the output itself. */
  readonly outputs?: readonly EmittedOutput[];
  readonly output?: EmittedOutput;
  /** Volume events: the volume version (then `path` is its key, `sizeBytes` its members' sum). */
  readonly volume?: VolumeFact;
  /** Volume `failed` / `quarantined`: the volume plugin whose run failed. */
  readonly plugin?: string;
}

export interface OutboxEvent {
  /** Order within the outbox; the dispatcher sends by it. */
  readonly seq: number;
  /** Stable across retries: the message id consumers dedupe by. */
  readonly id: string;
  readonly sink: string;
  readonly kind: EventKind;
  readonly source: string;
  /** The file of a file event; 0 for a volume event. */
  readonly fileId: number;
  /** The volume version of a volume event, else null. */
  readonly volumeId?: number | null;
  readonly atMs: number;
  readonly fact: EventFact;
}

export interface OutboxStats {
  readonly sink: string;
  readonly pending: number;
  readonly oldestPendingMs: number | null;
}

/** What retention may delete: done versions whose file is older than their source's window. */
export interface PruneRules {
  /** Per source: versions whose file mtime is before this can no longer come from a listing. */
  readonly windows: ReadonlyArray<{ readonly source: string; readonly mtimeBeforeMs: number }>;
  /** Quarantined versions given up before this are pruned too; later ones are kept for `retry`. */
  readonly quarantinedBeforeMs: number;
  /**
   * The volume plugins configured now, when known (the daemon): a failed volume version past its
   * window whose failed runs are all of other plugins (removed from the config) owes nothing and
   * is pruned. Absent: failed volume versions are kept.
   */
  readonly volumePlugins?: readonly string[];
}

export interface PruneResult {
  /** File versions deleted (or, in a dry run, that would be). */
  readonly files: number;
  /** Their plugin runs. */
  readonly pluginRuns: number;
  /** More prunable rows remain past this batch's limit. */
  readonly more: boolean;
}

/** Files fetched by one source in one time slot (see {@link Ledger.activity}). */
export interface ActivitySlot {
  readonly source: string;
  /** 0 is the newest slot, ending at `nowMs`; slot `n` covers `(now - (n+1)·slotMs, now - n·slotMs]`. */
  readonly slot: number;
  readonly files: number;
  readonly bytes: number;
}

export interface LedgerStats {
  readonly fileRows: number;
  readonly pluginRunRows: number;
  /** Bytes on disk (database and write-ahead log); null where the backend cannot tell. */
  readonly bytes: number | null;
}

export interface Ledger {
  /**
   * Radar volumes (README "Radar volumes"). Optional: a backend without it cannot serve a config
   * with `volumes:`, and the poller refuses such a config at start.
   */
  readonly volumes?: VolumeLedger;
  /** Record one listing of a source (one transaction); returns what is ready to fetch. */
  observe(source: string, observations: readonly Observation[], opts: ObserveOptions): Promise<ObserveResult>;
  /** Atomically take ready versions for fetching; returns only those this owner got. */
  claimForFetch(ids: readonly number[], owner: string, leaseUntilMs: number, nowMs: number): Promise<FileRecord[]>;
  /** Extend the lease of rows this owner holds. */
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
  /** Plugin runs of each file (files without runs map to an empty list). */
  pluginRuns(fileIds: readonly number[]): Promise<Map<number, PluginRunRecord[]>>;
  /**
   * Record that these runs start, in one transaction, before any of them runs: the attempt
   * counter is crash-safe (a run that dies with the process has used its attempt). Returns
   * each run's attempt number, in order.
   */
  markPluginRunning(runs: readonly PluginRunStart[], nowMs: number): Promise<number[]>;
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
  /** Make failed (and with `includeQuarantined`, quarantined) files due now; optionally one plugin's runs only. */
  /** Returns the ids of the files made due. */
  scheduleRetry(
    filter: { source?: string; plugin?: string; path?: string; includeQuarantined: boolean },
    nowMs: number,
  ): Promise<number[]>;
  /** Forget versions so they are fetched again when listed. */
  forget(filter: { source: string; path?: string; state?: FileState }): Promise<number>;
  get(id: number): Promise<FileRecord | undefined>;
  history(source: string, path: string): Promise<FileRecord[]>;
  files(query: FileQuery): Promise<FileRecord[]>;
  recordPoll(source: string, displayUrl: string, ok: boolean, error: string | null, nowMs: number): Promise<void>;
  status(): Promise<SourceStatus[]>;
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
   * Delete one batch (at most `limit` versions, one short transaction) of done versions that
   * retention allows: processed, superseded, rejected, seen or failed-to-fetch (a listing skips
   * them now), and quarantined ones past the hold. In-flight and plugin-retrying rows are kept.
   */
  prune(
    rules: PruneRules,
    opts: { readonly limit: number; readonly nowMs: number; readonly dryRun?: boolean },
  ): Promise<PruneResult>;
  /**
   * Files fetched per source per slot over the last `slots × slotMs` before `nowMs`, by fetch
   * time; slots without a fetch are left out. One aggregate query (the status page's chart).
   */
  activity(nowMs: number, slotMs: number, slots: number): Promise<ActivitySlot[]>;
  /** Rows and size of the ledger, for `status` and `/metrics`. */
  stats(): Promise<LedgerStats>;
  /** Versions that may still be fetched (their partial files can be resumed). */
  liveFetches(): Promise<Array<{ id: number; sizeBytes: number; mtimeMs: number }>>;
  close(): Promise<void>;
}

/** One poller process sharing the ledger with others, as its heartbeat row says. */
export interface InstanceRecord {
  /** `instance:` in the config, default host:pid. */
  readonly id: string;
  /** The claim owner id its claims carry. */
  readonly owner: string;
  readonly host: string;
  readonly pid: number;
  readonly startedMs: number;
  readonly heartbeatMs: number;
  /** Rows it holds right now. */
  readonly fetching: number;
  readonly processing: number;
}

export interface SweepResult {
  /** False when another instance was sweeping at that moment (one at a time). */
  readonly swept: boolean;
  /** Instances whose heartbeat was older than the lease: their rows are gone. */
  readonly dead: readonly string[];
  /** Their claims, given back: fetches to `seen`, processing to `fetched`. */
  readonly fetches: number;
  readonly processing: number;
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
