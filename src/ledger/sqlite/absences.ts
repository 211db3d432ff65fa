/** Removed upstream in SQLite (removed-upstream.ts decides; this runs the SQL in one transaction). */
import type Database from 'better-sqlite3';
import type { FileRecord } from '../records.js';
import {
  ABSENCE_STATES,
  type AbsenceOptions,
  type AbsenceResult,
  type AbsenceRow,
  type ListingCoverage,
  planAbsences,
} from '../removed-upstream.js';
import { type FileRow, toRecord } from '../rows.js';

const STATES = ABSENCE_STATES.map((s) => `'${s}'`).join(', ');

/** Past this many absent paths, one query of every row beats a lookup per path. */
const MAX_LOOKUPS = 1000;

/**
 * The rows whose absence decision can change. A row that is listed, not gone and never missed
 * needs nothing (planAbsences skips it), and on a re-poll nearly every row is one: those are read
 * as bare paths (one string each, no row object) and only the absent ones, and the rows already
 * missed or gone, are read whole. Same rows for the plan as reading them all.
 */
function absenceCandidates(db: Database.Database, source: string, coverage: ListingCoverage): AbsenceRow[] {
  const cols = 'id, path, mtime_ms, state, missed_listings';
  const settledPaths = db
    .prepare<[string], string>(
      `SELECT path FROM files WHERE source = ? AND state IN (${STATES}) AND state <> 'gone' AND missed_listings = 0`,
    )
    .pluck()
    .all(source);
  const absent: string[] = [];
  for (const p of settledPaths) if (!coverage.present.has(p)) absent.push(p);
  if (absent.length > MAX_LOOKUPS) {
    return db
      .prepare<[string], AbsenceRow>(`SELECT ${cols} FROM files WHERE source = ? AND state IN (${STATES})`)
      .all(source);
  }
  const rows = db
    .prepare<[string], AbsenceRow>(
      `SELECT ${cols} FROM files WHERE source = ? AND state IN (${STATES}) AND (state = 'gone' OR missed_listings > 0)`,
    )
    .all(source);
  const byPath = db.prepare<[string, string], AbsenceRow>(
    `SELECT ${cols} FROM files WHERE source = ? AND path = ? AND state IN (${STATES}) AND state <> 'gone' AND missed_listings = 0`,
  );
  for (const p of new Set(absent)) rows.push(...byPath.all(source, p));
  return rows;
}

export function recordAbsences(
  db: Database.Database,
  source: string,
  coverage: ListingCoverage,
  opts: AbsenceOptions,
  emitGone: (row: FileRow) => void,
): AbsenceResult {
  const rows = absenceCandidates(db, source, coverage);
  const plan = planAbsences(rows, coverage, opts.goneAfter);
  const now = opts.nowMs;
  const gone: FileRecord[] = [];
  db.transaction(() => {
    const setMissed = db.prepare('UPDATE files SET missed_listings = ? WHERE id = ?');
    for (const id of plan.reset) setMissed.run(0, id);
    for (const m of plan.missed) setMissed.run(m.missed, m.id);
    const toGone = db.prepare<Record<string, number>, FileRow>(
      `UPDATE files SET state = 'gone', gone_ms = @now, missed_listings = @missed, next_retry_ms = NULL, updated_ms = @now
       WHERE id = @id AND state IN (${STATES}) AND state <> 'gone' RETURNING *`,
    );
    for (const g of plan.gone) {
      const row = toGone.get({ id: g.id, missed: g.missed, now });
      if (row === undefined) continue;
      gone.push(toRecord(row));
      emitGone(row);
    }
    if (plan.back.length > 0) {
      // Listed again: the next listing must look at it, so no digest shortcut may skip its directory.
      db.prepare('DELETE FROM listing_digests WHERE source = ?').run(source);
      const toSeen = db.prepare(
        `UPDATE files SET state = 'seen', sightings = 0, gone_ms = NULL, missed_listings = 0, updated_ms = ? WHERE id = ? AND state = 'gone'`,
      );
      for (const id of plan.back) toSeen.run(now, id);
    }
  }).immediate();
  return { missing: plan.missed.length, gone, back: plan.back.length };
}
