/**
 * The volume part of the ledger: radar volumes (files grouped by a key pattern), their members
 * (file versions) and the runs of volume plugins per (volume, plugin). Batch-shaped: arrays in,
 * arrays out, one transaction per call, so a networked backend makes one round trip per batch.
 *
 * States of a volume version:
 *   collecting → complete | partial → (claimed) → processed | failed → … → quarantined
 *   superseded: a member changed (or a late member arrived with `reopenLate`) before its plugins
 *   ran; the next version of the volume runs instead.
 * A claim is `claimedBy` + `leaseUntilMs` on a complete, partial or due failed version: two
 * processes on one ledger never run the plugins of one volume version at once.
 */
import type { EmittedOutput } from '../plugins/api.js';
import type { CompletenessRules } from '../volumes/completeness.js';
import type { PluginOutcome, PluginRunState, PruneRules } from './records.js';

export type VolumeState = 'collecting' | 'complete' | 'partial' | 'processed' | 'failed' | 'quarantined' | 'superseded';

export const VOLUME_STATES: readonly VolumeState[] = [
  'collecting',
  'complete',
  'partial',
  'processed',
  'failed',
  'quarantined',
  'superseded',
];

/** A landed file not yet looked at by the volume stage. */
export interface LandedFile {
  readonly fileId: number;
  readonly path: string;
  /** The file version (`size:mtime`); a member whose version changes reopens its volume. */
  readonly version: string;
  readonly localPath: string;
  readonly sizeBytes: number;
  readonly mtimeMs: number;
  /** When it landed: member times (and the quiet time) count from here. */
  readonly landedMs: number;
}

/** A landed file the key pattern placed in a volume. */
export interface MemberArrival extends LandedFile {
  readonly key: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly member: string;
}

export interface VolumeMemberRecord {
  readonly member: string;
  readonly fileId: number;
  readonly path: string;
  readonly version: string;
  readonly localPath: string;
  readonly sizeBytes: number;
  readonly mtimeMs: number;
  readonly landedMs: number;
}

export interface VolumeRecord {
  readonly id: number;
  readonly source: string;
  readonly key: string;
  /** 1 for the first version of this key, 2 after it was reopened, ... */
  readonly version: number;
  /** Digest of the (member, path, file version) pairs. */
  readonly digest: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly state: VolumeState;
  /** The version was handed on as partial (not every expected member was there). */
  readonly partial: boolean;
  readonly firstMemberMs: number;
  readonly lastMemberMs: number;
  /** When it became complete or partial. */
  readonly closedMs: number | null;
  readonly doneMs: number | null;
  readonly claimedBy: string | null;
  readonly leaseUntilMs: number | null;
  readonly nextRetryMs: number | null;
  readonly errorCode: string | null;
  readonly lastError: string | null;
  readonly updatedMs: number;
  readonly members: readonly VolumeMemberRecord[];
}

export interface VolumeRunRecord {
  readonly volumeId: number;
  readonly plugin: string;
  readonly state: PluginRunState;
  readonly attempts: number;
  readonly errorCode: string | null;
  readonly lastError: string | null;
  readonly durationMs: number | null;
  readonly nextRetryMs: number | null;
  /** Files the run emitted (`ctx.emit`). */
  readonly outputs: readonly EmittedOutput[];
  readonly updatedMs: number;
}

export interface VolumeRunStart {
  readonly volumeId: number;
  readonly plugin: string;
}

export interface VolumeResult {
  readonly id: number;
  readonly outcomes: readonly PluginOutcome[];
  /**
   * The volume plugins configured now: the runs of any other (removed from the config) are owed
   * nothing and do not hold the volume failed. Absent: every recorded run counts.
   */
  readonly configured?: readonly string[];
}

export interface VolumeQuery {
  readonly source?: string;
  readonly state?: VolumeState;
  /** Exact volume key. */
  readonly key?: string;
  readonly limit?: number;
}

export interface VolumeCounts {
  readonly source: string;
  readonly state: VolumeState;
  readonly count: number;
  /** Oldest last-member time among these volumes (the stalest collecting one). */
  readonly oldestLastMemberMs: number | null;
}

export interface VolumeLedger {
  /**
   * Landed versions of a source's files (landed at or after `sinceMs`) the volume stage has not
   * looked at yet, oldest landing first.
   */
  landedFiles(source: string, sinceMs: number, limit: number): Promise<LandedFile[]>;
  /**
   * Record a batch, in one transaction: `arrivals` join their volumes (a new volume, a changed
   * member, a late member), `examined` (every file of the batch, members or not) are marked as
   * looked at. Every touched volume is assessed with `rules` at `nowMs`. Returns the touched
   * volumes' latest versions.
   */
  assignMembers(
    source: string,
    arrivals: readonly MemberArrival[],
    examined: readonly number[],
    rules: CompletenessRules,
    nowMs: number,
  ): Promise<VolumeRecord[]>;
  /** Collecting volumes whose quiet time has passed become partial (or complete), in one transaction. */
  closeDue(source: string, rules: CompletenessRules, nowMs: number): Promise<VolumeRecord[]>;
  /** Atomically take complete, partial and due failed volume versions of a source. */
  claimVolumes(
    source: string,
    owner: string,
    leaseUntilMs: number,
    nowMs: number,
    limit: number,
  ): Promise<VolumeRecord[]>;
  /** Runs of each volume (volumes without runs map to an empty list). */
  volumeRuns(ids: readonly number[]): Promise<Map<number, VolumeRunRecord[]>>;
  /** Record that these runs start (crash-safe attempt counter); returns each run's attempt. */
  markVolumeRunning(runs: readonly VolumeRunStart[], nowMs: number): Promise<number[]>;
  /** Record outcomes and each volume's resulting state; `claim-lost` where this owner lost it. */
  finishVolumes(
    results: readonly VolumeResult[],
    owner: string,
    nowMs: number,
  ): Promise<Array<VolumeState | 'claim-lost'>>;
  /** Give back claims of dead owners or expired leases; a run left 'running' becomes a crashed attempt. */
  recoverStaleVolumes(nowMs: number, isOwnerGone: (owner: string) => boolean): Promise<number>;
  /**
   * Make failed (and with `includeQuarantined`, quarantined) volume versions due now, only for the
   * runs of `plugin` when given; a quarantined run starts its attempts again. Returns their ids.
   */
  retryVolumes(
    filter: { source?: string; plugin?: string; key?: string; includeQuarantined: boolean },
    nowMs: number,
  ): Promise<number[]>;
  volumes(query: VolumeQuery): Promise<VolumeRecord[]>;
  /** Volume versions that have (or had) this remote path as a member, newest first. */
  volumesOfPath(source: string, path: string): Promise<VolumeRecord[]>;
  /** Volumes per (source, state), for `/metrics` and `status`. */
  volumeCounts(): Promise<VolumeCounts[]>;
  /**
   * Delete one batch (one short transaction) of volume versions whose last member landed before
   * their source's window: processed, superseded and collecting ones (past the window no member
   * can still come), and quarantined ones given up before the hold. Members and runs go with them.
   */
  pruneVolumes(
    rules: PruneRules,
    opts: { readonly limit: number; readonly dryRun?: boolean },
  ): Promise<{ volumes: number; more: boolean }>;
}
