/**
 * Removed upstream in SQLite (removed-upstream.ts decides; this runs the SQL in one transaction):
 * versions missed by complete listings, and deletions the upstream announced. The statements are
 * prepared once per ledger, not once per listing.
 */
import type Database from 'better-sqlite3';
import type { FileRecord } from '../records.js';
import {
  ABSENCE_STATES,
  type AbsenceOptions,
  type AbsenceResult,
  type AbsenceRow,
  type DeletionResult,
  deletionTimeMs,
  IN_FLIGHT_STATES,
  type ListingCoverage,
  planAbsences,
  type UpstreamDeletion,
} from '../removed-upstream.js';
import { type FileRow, toRecord } from '../rows.js';
import { prep } from './stmt.js';

const STATES = ABSENCE_STATES.map((s) => `'${s}'`).join(', ');
const COLS = 'id, path, mtime_ms, state, missed_listings';

/** Past this many absent paths, one query of every row beats a lookup per path. */
const MAX_LOOKUPS = 1000;

function absenceStatements(db: Database.Database) {
  return {
    settledPaths: db
      .prepare<[string], string>(
        `SELECT path FROM files WHERE source = ? AND state IN (${STATES}) AND state <> 'gone' AND missed_listings = 0`,
      )
      .pluck(),
    allCandidates: prep<[string], AbsenceRow>(
      db,
      `SELECT ${COLS} FROM files WHERE source = ? AND state IN (${STATES})`,
    ),
    countedCandidates: prep<[string], AbsenceRow>(
      db,
      `SELECT ${COLS} FROM files WHERE source = ? AND state IN (${STATES}) AND (state = 'gone' OR missed_listings > 0)`,
    ),
    candidateByPath: prep<[string, string], AbsenceRow>(
      db,
      `SELECT ${COLS} FROM files WHERE source = ? AND path = ? AND state IN (${STATES}) AND state <> 'gone' AND missed_listings = 0`,
    ),
    setMissed: prep<[number, number]>(db, 'UPDATE files SET missed_listings = ? WHERE id = ?'),
    toGone: prep<{ id: number; missed: number; now: number }, FileRow>(
      db,
      `UPDATE files SET state = 'gone', gone_ms = @now, gone_by = NULL, missed_listings = @missed, next_retry_ms = NULL, updated_ms = @now
       WHERE id = @id AND state IN (${STATES}) AND state <> 'gone' RETURNING *`,
    ),
    dropDigests: prep<[string]>(db, 'DELETE FROM listing_digests WHERE source = ?'),
    toSeen: prep<[number, number]>(
      db,
      `UPDATE files SET state = 'seen', sightings = 0, gone_ms = NULL, gone_by = NULL, missed_listings = 0, updated_ms = ? WHERE id = ? AND state = 'gone'`,
    ),
    pathStates: prep<[string, string], { state: string; n: number }>(
      db,
      'SELECT state, count(*) AS n FROM files WHERE source = ? AND path = ? GROUP BY state',
    ),
    // Only the versions announced before the deletion: one announced after it is a new file.
    deleted: prep<{ source: string; path: string; at: number; goneMs: number; by: string; now: number }, FileRow>(
      db,
      `UPDATE files SET state = 'gone', gone_ms = @goneMs, gone_by = @by, next_retry_ms = NULL, updated_ms = @now
       WHERE source = @source AND path = @path AND mtime_ms <= @at AND state IN (${STATES}) AND state <> 'gone' RETURNING *`,
    ),
  };
}

export class SqliteAbsences {
  readonly #db: Database.Database;
  readonly #s: ReturnType<typeof absenceStatements>;
  readonly #emitGone: (row: FileRow, nowMs: number) => void;

  constructor(db: Database.Database, emitGone: (row: FileRow, nowMs: number) => void) {
    this.#db = db;
    this.#s = absenceStatements(db);
    this.#emitGone = emitGone;
  }

  recordAbsences(source: string, coverage: ListingCoverage, opts: AbsenceOptions): AbsenceResult {
    const s = this.#s;
    const plan = planAbsences(this.#candidates(source, coverage), coverage, opts.goneAfter);
    const now = opts.nowMs;
    const gone: FileRecord[] = [];
    this.#db
      .transaction(() => {
        for (const id of plan.reset) s.setMissed.run(0, id);
        for (const m of plan.missed) s.setMissed.run(m.missed, m.id);
        for (const g of plan.gone) {
          const row = s.toGone.get({ id: g.id, missed: g.missed, now });
          if (row === undefined) continue;
          gone.push(toRecord(row));
          this.#emitGone(row, now);
        }
        if (plan.back.length > 0) {
          // Listed again: the next listing must look at it, so no digest shortcut may skip its directory.
          s.dropDigests.run(source);
          for (const id of plan.back) s.toSeen.run(now, id);
        }
      })
      .immediate();
    return { missing: plan.missed.length, gone, back: plan.back.length };
  }

  /**
   * The rows whose absence decision can change. A row that is listed, not gone and never missed
   * needs nothing (planAbsences skips it), and on a re-poll nearly every row is one: those are read
   * as bare paths (one string each, no row object) and only the absent ones, and the rows already
   * missed or gone, are read whole. Same rows for the plan as reading them all.
   */
  #candidates(source: string, coverage: ListingCoverage): AbsenceRow[] {
    const s = this.#s;
    const absent: string[] = [];
    for (const p of s.settledPaths.all(source)) if (!coverage.present.has(p)) absent.push(p);
    if (absent.length > MAX_LOOKUPS) return s.allCandidates.all(source);
    const rows = s.countedCandidates.all(source);
    for (const p of new Set(absent)) rows.push(...s.candidateByPath.all(source, p));
    return rows;
  }

  recordDeletion(source: string, deletion: UpstreamDeletion, nowMs: number): DeletionResult {
    const s = this.#s;
    return this.#db
      .transaction((): DeletionResult => {
        const states = s.pathStates.all(source, deletion.path);
        const busy = states.some((r) => IN_FLIGHT_STATES.includes(r.state as (typeof IN_FLIGHT_STATES)[number]));
        const rows = s.deleted.all({
          source,
          path: deletion.path,
          at: deletion.atMs,
          goneMs: deletionTimeMs(deletion, nowMs),
          by: deletion.by,
          now: nowMs,
        });
        for (const row of rows) this.#emitGone(row, nowMs);
        return { gone: rows.map(toRecord), known: states.length > 0, busy };
      })
      .immediate();
  }
}
