/**
 * Files removed upstream: a version whose path is missing from `goneAfter` complete listings in a
 * row is recorded as `gone`. Only listings that are whole count (no failure, no cap, no line left
 * unread: the caller decides), and only paths the listing covered: under a directory it listed,
 * matched by the source's filter, not older than its age window. The decision is pure and shared
 * by the ledger backends; they run the SQL.
 */
import type { FileRecord, FileState, Ledger } from './ledger.js';

/** What one complete listing covered. */
export interface ListingCoverage {
  /** Paths of the files the listing showed (before any age window). */
  readonly present: ReadonlySet<string>;
  /** Whether a path lies where the listing looked: a directory listed whole, matched by the filter. */
  readonly covers: (path: string) => boolean;
  /** Versions with a file time before this are outside the listed window (maxAge): never counted. */
  readonly mtimeFromMs?: number;
}

export interface AbsenceOptions {
  readonly nowMs: number;
  /** Complete listings in a row without a path before its versions are `gone` (at least 1). */
  readonly goneAfter: number;
  /** The lister lease the listing was taken under (shared ledger): a stale lister records nothing. */
  readonly lister?: { readonly owner: string; readonly epoch: number };
}

export interface AbsenceResult {
  /** Versions missing from this listing (counted, not yet gone). */
  readonly missing: number;
  /** Versions recorded as gone by this listing, with where they had landed. */
  readonly gone: readonly FileRecord[];
  /** Gone versions listed again: back to `seen`, fetched anew. */
  readonly back: number;
}

/** A removal the upstream announced itself (a WIS2 notification with a `deletion` link). */
export interface UpstreamDeletion {
  /** The path the upstream says is removed (a WIS2 `data_id`). */
  readonly path: string;
  /** When the upstream removed it (the notification's pubtime). */
  readonly atMs: number;
  /** What said so, kept with the record and shown by `poller why`: `WIS2 notification <id>`. */
  readonly by: string;
}

export interface DeletionResult {
  /** Versions recorded as gone by this deletion, with where they had landed. */
  readonly gone: readonly FileRecord[];
  /** The ledger knows the path at all (any version, any state). */
  readonly known: boolean;
  /** A version of the path is being fetched or processed: the deletion is recorded once it is done. */
  readonly busy: boolean;
}

/** A ledger that records files removed upstream. */
export interface RemovedUpstream {
  recordAbsences(source: string, coverage: ListingCoverage, opts: AbsenceOptions): Promise<AbsenceResult>;
  /** Every version of `deletion.path` up to `atMs` and not in flight becomes `gone` (gone_by says why); idempotent. */
  recordDeletion(source: string, deletion: UpstreamDeletion, opts: { readonly nowMs: number }): Promise<DeletionResult>;
}

/** What a `gone` event says of the version: where it had landed, and who said it was removed. */
export function goneFact(row: { local_path: string | null; gone_by?: string | null }): {
  localPath: string | null;
  goneBy?: string;
} {
  return { localPath: row.local_path, ...(row.gone_by != null && { goneBy: row.gone_by }) };
}

/** The time a deletion is recorded under: when the upstream said, never in the future. */
export function deletionTimeMs(deletion: UpstreamDeletion, nowMs: number): number {
  return Number.isFinite(deletion.atMs) ? Math.min(deletion.atMs, nowMs) : nowMs;
}

/** States of a version that is being worked on: a deletion waits for them. */
export const IN_FLIGHT_STATES: readonly FileState[] = ['fetching', 'processing'];

export function hasRemovedUpstream(l: Ledger): l is Ledger & RemovedUpstream {
  return typeof (l as Partial<RemovedUpstream>).recordAbsences === 'function';
}

/** States whose versions can be found gone; in-flight rows wait for their claim to end. */
export const ABSENCE_STATES: readonly FileState[] = ['seen', 'fetched', 'processed', 'failed', 'quarantined', 'gone'];

/** The columns of a candidate row the decision needs. */
export interface AbsenceRow {
  readonly id: number;
  readonly path: string;
  readonly mtime_ms: number;
  readonly state: FileState;
  readonly missed_listings: number;
}

export interface AbsencePlan {
  /** Present again after being missed: the count goes back to 0. */
  readonly reset: number[];
  /** Missed once more, not yet gone: id and the new count. */
  readonly missed: Array<{ id: number; missed: number }>;
  /** Now gone: id and the count. */
  readonly gone: Array<{ id: number; missed: number }>;
  /** Gone versions listed again. */
  readonly back: number[];
}

export function planAbsences(rows: readonly AbsenceRow[], coverage: ListingCoverage, goneAfter: number): AbsencePlan {
  const plan: AbsencePlan = { reset: [], missed: [], gone: [], back: [] };
  const after = Math.max(1, Math.floor(goneAfter));
  for (const r of rows) {
    if (coverage.present.has(r.path)) {
      if (r.state === 'gone') plan.back.push(r.id);
      else if (r.missed_listings > 0) plan.reset.push(r.id);
      continue;
    }
    if (r.state === 'gone' || !coverage.covers(r.path)) continue;
    if (coverage.mtimeFromMs !== undefined && r.mtime_ms < coverage.mtimeFromMs) continue;
    const missed = r.missed_listings + 1;
    if (missed >= after) plan.gone.push({ id: r.id, missed });
    else plan.missed.push({ id: r.id, missed });
  }
  return plan;
}
