/**
 * The records of the ledger: file versions, plugin runs, outbox events and the arguments and
 * results of its transitions. Data only; the roles that act on them are in `ledger.ts`.
 */
import type { EmittedOutput } from '../plugins/api.js';
import type { MtimePrecision, RemoteEntry } from '../sources/source.js';

export type FileState =
  | 'seen'
  | 'fetching'
  | 'fetched'
  | 'processing'
  | 'processed'
  | 'failed'
  | 'quarantined'
  | 'rejected'
  | 'superseded'
  | 'gone';
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
  'gone',
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
  /** When the version was recorded as removed upstream (state `gone`). */
  readonly goneMs?: number;
  /** What said it was removed, when the upstream announced it (`WIS2 notification <id>`); absent when listings found it missing. */
  readonly goneBy?: string;
  /** A landing root per host (PostgreSQL): the instance whose landing holds the bytes. */
  readonly landedOn?: string;
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

/** A plugin run that succeeded, recorded before the file's other plugins run. */
export interface PluginRunSuccess {
  readonly fileId: number;
  readonly plugin: string;
  readonly durationMs: number;
  readonly outputs: readonly EmittedOutput[];
}

export interface ProcessingResult {
  readonly id: number;
  readonly outcomes: readonly PluginOutcome[];
}

/** Which failed (and quarantined) versions `scheduleRetry` makes due; `plugin`: only that plugin's runs. */
export interface RetryFilter {
  readonly source?: string;
  readonly plugin?: string;
  readonly path?: string;
  readonly includeQuarantined: boolean;
}

/** Which versions `forget` deletes (never in-flight ones). */
export interface ForgetFilter {
  readonly source: string;
  readonly path?: string;
  readonly state?: FileState;
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
export type FileEventKind = 'fetched' | 'processed' | 'failed' | 'quarantined' | 'output' | 'gone';
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
/**
 * Lateness per product (`expect:`): `late` when a product's cadence plus grace passes with no
 * file, `on-time` when one comes again. Written by the clock, not by a transition.
 */
export type ProductEventKind = 'late' | 'on-time';
export type EventKind = FileEventKind | VolumeEventKind | ProductEventKind;

export function isVolumeEventKind(kind: EventKind): kind is VolumeEventKind {
  return kind.startsWith('volume-');
}

export function isProductEventKind(kind: EventKind): kind is ProductEventKind {
  return kind === 'late' || kind === 'on-time';
}

/** The product of a `late` / `on-time` event (the fact's `path` is then the product name). */
export interface ProductFact {
  readonly product: string;
  readonly everyMs: number;
  readonly graceMs: number;
  /** Remote mtime of its newest file; null when none was seen. */
  readonly newestMtimeMs: number | null;
  /** When its newest file landed; null when none was seen. */
  readonly arrivedMs: number | null;
  /** When it counted (or counts) as late: arrival (or start) + every + grace. */
  readonly lateAtMs: number;
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
  /** `gone`: what announced the removal (`WIS2 notification <id>`); absent when listings found it missing. */
  readonly goneBy?: string;
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
  /** `late` / `on-time`: the product and its rule (then `path` is the product name). */
  readonly product?: ProductFact;
}

export interface OutboxEvent {
  /** Order within the outbox; the dispatcher sends by it. */
  readonly seq: number;
  /** Stable across retries: the message id consumers dedupe by. */
  readonly id: string;
  readonly sink: string;
  readonly kind: EventKind;
  readonly source: string;
  /** The file of a file event; 0 for a volume or product event. */
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

/** Files fetched by one source in one time slot (see `LedgerQueries.activity`). */
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
  /** Their radar volume claims, given back (their started runs count as crashed attempts). */
  readonly volumes?: number;
  /** A landing root per host: landed-but-unprocessed versions of gone instances, due for fetching again. */
  readonly refetch?: number;
}
