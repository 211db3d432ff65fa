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

export function recordAbsences(
  db: Database.Database,
  source: string,
  coverage: ListingCoverage,
  opts: AbsenceOptions,
  emitGone: (row: FileRow) => void,
): AbsenceResult {
  const rows = db
    .prepare<[string], AbsenceRow>(
      `SELECT id, path, mtime_ms, state, missed_listings FROM files WHERE source = ? AND state IN (${STATES})`,
    )
    .all(source);
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
