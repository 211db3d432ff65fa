/**
 * What one listing does to the ledger, decided without touching it. Per listed entry, given the
 * latest row of its path: which write it asks for (insert, regrow, one more sighting, none) and
 * whether it is ready to fetch. Per directory: whether its listing digest is kept, dropped or
 * left alone. Both backends look the rows up and run the writes; the counts and the decisions
 * are made here, once.
 */
import type { Observation } from '../records.js';
import type { LatestRow } from '../rows.js';
import { isSameVersion } from '../version.js';
import { isQuiet } from './guards.js';
import { clip } from './verdict.js';

/** The code of a rejected (unusable) remote name. */
export const UNSAFE_PATH_CODE = 'POLLER_LANDING_UNSAFE_PATH';

/**
 * What one sighting of a listed entry does, given the latest row of its path:
 * - `insert-rejected`: an unusable name seen for the first time; `rejected`: seen before.
 * - `insert`: a new file (`isNew`) or a new version of one taken further than 'seen'.
 * - `regrow`: still settling and it moved (a growing upload): sightings start again.
 * - `sighted`: settling and unchanged: one more sighting.
 * - `unchanged`: nothing to write; `due` when it is a failed fetch whose retry time has come.
 */
export type Sighting =
  | { readonly kind: 'insert-rejected' }
  | { readonly kind: 'rejected' }
  | { readonly kind: 'insert'; readonly isNew: boolean }
  | { readonly kind: 'regrow' }
  | { readonly kind: 'sighted' }
  | { readonly kind: 'unchanged'; readonly quiet: boolean; readonly due: boolean };

export function classifySighting(o: Observation, row: LatestRow | undefined, nowMs: number): Sighting {
  const { entry } = o;
  if (o.rejectReason !== undefined) return row ? { kind: 'rejected' } : { kind: 'insert-rejected' };
  if (row === undefined) return { kind: 'insert', isNew: true };
  const same = isSameVersion(
    { sizeBytes: row.size_bytes, mtimeMs: row.mtime_ms, mtimePrecision: row.mtime_precision, etag: row.etag },
    entry,
  );
  if (!same) return row.state === 'seen' ? { kind: 'regrow' } : { kind: 'insert', isNew: false };
  if (row.state === 'seen') return { kind: 'sighted' };
  return {
    kind: 'unchanged',
    quiet: isQuiet(row.state, row.stage),
    due: row.state === 'failed' && row.stage === 'fetch' && row.next_retry_ms !== null && row.next_retry_ms <= nowMs,
  };
}

export interface ReadinessRules {
  readonly nowMs: number;
  /** A file must be this old (by mtime) to be taken. */
  readonly minAgeMs: number;
  /** Unchanged sightings needed before a file is taken. */
  readonly stableListings: number;
  /** A file at least this old at first sight needs no second listing. */
  readonly oldEnoughMs: number;
}

/** Whether a version is ready to fetch: old enough, and stable or old enough at first sight. */
export function readiness(opts: ReadinessRules): (mtimeMs: number, sightings: number) => boolean {
  return (mtimeMs, sightings) => {
    const ageMs = opts.nowMs - mtimeMs;
    if (ageMs < opts.minAgeMs) return false;
    return sightings >= opts.stableListings || ageMs >= opts.oldEnoughMs;
  };
}

export interface ListingCounts {
  listed: number;
  new: number;
  changed: number;
  unchanged: number;
  /** Seen but not yet stable or not yet old enough. */
  settling: number;
  rejected: number;
}

/**
 * The write one sighting asks for. `ready`: the row is ready to fetch once written (for an
 * insert: if the insert happens; one that meets an identical row settles, see `notInserted`).
 */
export type SightingStep =
  | {
      readonly write: 'insert';
      readonly state: 'seen' | 'rejected';
      readonly code: string | null;
      readonly error: string | null;
      readonly ready: boolean;
    }
  | { readonly write: 'regrow' | 'sighted'; readonly id: number; readonly ready: boolean }
  | { readonly write: null; readonly id: number; readonly ready: boolean; readonly quiet: boolean };

/** Nothing to write, nothing ready (a rejected name seen again). */
const NOTHING: SightingStep = { write: null, id: 0, ready: false, quiet: false };

/** A stored digest, as a directory's last listing left it. */
export interface StoredDigest {
  readonly digest: string;
  /** Rejected names among its entries (counted again when the digest answers). */
  readonly rejected: number;
}

/** What becomes of a directory's stored digest after its entries were sighted. */
export type DigestAction = { readonly put: true; readonly rejected: number } | { readonly put: false; drop: boolean };

/**
 * The plan of one listing, built entry by entry: counts, and for each entry the write it needs.
 * Directory by directory: `answeredByDigest`, or `openDir`, `sight` (or `quietHit`) per entry and `closeDir`.
 */
export class ListingPlan {
  readonly counts: ListingCounts;
  readonly #nowMs: number;
  readonly #isReady: (mtimeMs: number, sightings: number) => boolean;
  /** Every entry of the open directory was unchanged and needs nothing: its digest is kept. */
  #dirQuiet = true;
  #rejectedBefore = 0;

  constructor(listed: number, rules: ReadinessRules) {
    this.counts = { listed, new: 0, changed: 0, unchanged: 0, settling: 0, rejected: 0 };
    this.#nowMs = rules.nowMs;
    this.#isReady = readiness(rules);
  }

  /**
   * True when a directory's stored digest is the listing's: the directory is unchanged, counted
   * from the digest, and its entries need not be looked at.
   */
  answeredByDigest(size: number, digest: string, stored: StoredDigest | undefined): boolean {
    if (stored?.digest !== digest) return false;
    this.counts.unchanged += size - stored.rejected;
    this.counts.rejected += stored.rejected;
    return true;
  }

  /** Start sighting the entries of a directory its digest did not answer for. */
  openDir(): void {
    this.#dirQuiet = true;
    this.#rejectedBefore = this.counts.rejected;
  }

  /** An entry a backend's cache knows to be unchanged in a quiet state: nothing to look up. */
  quietHit(): void {
    this.counts.unchanged++;
  }

  sight(o: Observation, row: LatestRow | undefined): SightingStep {
    const s = classifySighting(o, row, this.#nowMs);
    const c = this.counts;
    switch (s.kind) {
      case 'insert-rejected':
        c.new++;
        c.rejected++;
        this.#dirQuiet = false;
        return {
          write: 'insert',
          state: 'rejected',
          code: UNSAFE_PATH_CODE,
          error: clip(o.rejectReason ?? ''),
          ready: false,
        };
      case 'rejected':
        c.rejected++;
        return NOTHING;
      case 'insert': {
        // New file, or a new version of a file already taken further than 'seen'.
        this.#dirQuiet = false;
        if (s.isNew) c.new++;
        else c.changed++;
        const ready = this.#isReady(o.entry.mtimeMs, 1);
        if (!ready) c.settling++;
        return { write: 'insert', state: 'seen', code: null, error: null, ready };
      }
      case 'regrow':
        this.#dirQuiet = false;
        c.changed++;
        return this.#settle('regrow', (row as LatestRow).id, this.#isReady(o.entry.mtimeMs, 1));
      case 'sighted': {
        const r = row as LatestRow;
        this.#dirQuiet = false;
        return this.#settle('sighted', r.id, this.#isReady(r.mtime_ms, r.sightings + 1));
      }
      case 'unchanged':
        c.unchanged++;
        if (!s.quiet) this.#dirQuiet = false;
        return { write: null, id: (row as LatestRow).id, ready: s.due, quiet: s.quiet };
    }
  }

  #settle(write: 'regrow' | 'sighted', id: number, ready: boolean): SightingStep {
    if (!ready) this.counts.settling++;
    return { write, id, ready };
  }

  /** A ready insert met an identical row (another writer's, committed meanwhile): it settles. */
  notInserted(): void {
    this.counts.settling++;
  }

  /** End the open directory: its digest is stored when every entry was quiet, else dropped if there was one. */
  closeDir(hadStored: boolean): DigestAction {
    if (this.#dirQuiet) return { put: true, rejected: this.counts.rejected - this.#rejectedBefore };
    return { put: false, drop: hadStored };
  }
}
