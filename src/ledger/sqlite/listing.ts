/**
 * A listing recorded in SQLite: the plan of `core/sighting.ts` executed entry by entry, one
 * indexed lookup and at most one write each, in one transaction. In front of it, a cache of the
 * versions known to be quiet: a daemon re-polling an unchanged 100k-entry directory then skips
 * SQLite for those entries.
 */
import type Database from 'better-sqlite3';
import type { RemoteEntry } from '../../sources/source.js';
import { ListingPlan, type SightingStep } from '../core/sighting.js';
import type { FileRecord, Observation, ObserveOptions, ObserveResult } from '../records.js';
import { type FileRow, groupByDir, type LatestRow, listingDigest, quietKey, toRecord } from '../rows.js';
import type { LatestTuple, Statements } from './statements.js';

/** Paths per source held in the quiet-version cache: a few 100k-entry directories' worth. */
const QUIET_CACHE_MAX = 500_000;

/**
 * Per source, path → the version key of a row in a quiet state. Dropped whenever another
 * connection commits (PRAGMA data_version) and on this connection's forget, retry and prune.
 */
export class QuietCache {
  readonly #db: Database.Database;
  readonly #bySource = new Map<string, Map<string, string>>();
  #dataVersion = -1;

  constructor(db: Database.Database) {
    this.#db = db;
  }

  clear(): void {
    this.#bySource.clear();
  }

  /** The cache of a source, emptied first if another connection has committed. */
  of(source: string): Map<string, string> {
    const version = this.#db.pragma('data_version', { simple: true }) as number;
    if (version !== this.#dataVersion) {
      this.#bySource.clear();
      this.#dataVersion = version;
    }
    let m = this.#bySource.get(source);
    if (!m) {
      m = new Map();
      this.#bySource.set(source, m);
    }
    return m;
  }
}

function latestRow(raw: LatestTuple | undefined): LatestRow | undefined {
  return (
    raw && {
      id: raw[0],
      size_bytes: raw[1],
      mtime_ms: raw[2],
      mtime_precision: raw[3],
      state: raw[4],
      stage: raw[5],
      sightings: raw[6],
      next_retry_ms: raw[7],
      etag: raw[8],
    }
  );
}

function version(entry: RemoteEntry) {
  return { size: entry.sizeBytes, mtime: entry.mtimeMs, precision: entry.mtimePrecision, etag: entry.etag ?? '' };
}

/** Thrown inside the transaction to roll a dry run back. */
const ROLLBACK = new Error('dry run');

export function recordListing(
  db: Database.Database,
  s: Statements,
  quiet: QuietCache,
  source: string,
  observations: readonly Observation[],
  opts: ObserveOptions,
): ObserveResult {
  const plan = new ListingPlan(observations.length, opts);
  const readyIds: number[] = [];
  let ready: FileRecord[] = [];
  try {
    db.transaction(() => {
      const cache = quiet.of(source);
      for (const [dir, group] of groupByDir(observations)) {
        const digest = listingDigest(group);
        const stored = s.digestGet.get(source, dir);
        if (plan.answeredByDigest(group.length, digest, stored)) continue;
        plan.openDir();
        for (const o of group) sightOne(s, plan, cache, source, o, opts.nowMs, readyIds);
        const d = plan.closeDir(stored !== undefined);
        if (d.put) s.digestPut.run(source, dir, digest, d.rejected, opts.nowMs);
        else if (d.drop) s.digestDrop.run(source, dir);
      }
      ready = readyIds.map((id) => toRecord(s.byId.get(id) as FileRow));
      if (opts.dryRun) throw ROLLBACK;
    }).immediate();
  } catch (err) {
    if (err !== ROLLBACK) throw err;
  }
  return { ready, counts: plan.counts };
}

function sightOne(
  s: Statements,
  plan: ListingPlan,
  cache: Map<string, string>,
  source: string,
  o: Observation,
  now: number,
  readyIds: number[],
): void {
  const { entry } = o;
  const key = quietKey(entry);
  if (o.rejectReason === undefined && cache.get(entry.path) === key) {
    plan.quietHit();
    return;
  }
  const step: SightingStep = plan.sight(o, latestRow(s.latest.get(source, entry.path)));
  switch (step.write) {
    case 'insert': {
      if (step.state === 'seen') cache.delete(entry.path);
      const { code, error, state } = step;
      const info = s.insert.run({ source, path: entry.path, ...version(entry), state, now, code, error });
      if (!step.ready) return;
      if (info.changes === 1) readyIds.push(Number(info.lastInsertRowid));
      else plan.notInserted();
      return;
    }
    case 'regrow':
      s.regrow.run({ id: step.id, ...version(entry), now });
      break;
    case 'sighted':
      s.sighted.run({ id: step.id, now });
      break;
    case null:
      if (step.quiet) {
        // Bounded: a feed of new names every few minutes would otherwise grow it for months.
        if (cache.size >= QUIET_CACHE_MAX) cache.clear();
        cache.set(entry.path, key);
      }
      break;
  }
  if (step.ready) readyIds.push(step.id);
}
