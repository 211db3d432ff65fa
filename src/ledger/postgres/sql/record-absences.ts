/**
 * Removed upstream in PostgreSQL (removed-upstream.ts decides; this runs the SQL in the caller's
 * transaction): versions missed by complete listings, and deletions the upstream announced.
 */
import type { OutboxRouter } from '../../outbox-routes.js';
import type { FileRecord } from '../../records.js';
import {
  ABSENCE_STATES,
  type AbsenceOptions,
  type AbsenceResult,
  type AbsenceRow,
  type DeletionResult,
  deletionTimeMs,
  goneFact,
  IN_FLIGHT_STATES,
  type ListingCoverage,
  planAbsences,
  type UpstreamDeletion,
} from '../../removed-upstream.js';
import { type FileRow, toRecord } from '../../rows.js';
import { eventsOf } from '../outbox-events.js';
import type { Q } from '../pool.js';
import { checkLister } from './check-lister.js';
import { insertEvents } from './outbox.js';

export async function recordAbsences(
  c: Q,
  router: OutboxRouter,
  source: string,
  coverage: ListingCoverage,
  opts: AbsenceOptions,
): Promise<AbsenceResult> {
  // Fenced as `observe` is: a lister that lost its lease records no absence.
  if (opts.lister) await checkLister(c, source, opts.lister);
  const rows = await c.query<AbsenceRow>(
    'SELECT id, path, mtime_ms, state, missed_listings FROM files WHERE source = $1 AND state = ANY($2::text[])',
    [source, ABSENCE_STATES],
  );
  const plan = planAbsences(rows.rows, coverage, opts.goneAfter);
  const now = opts.nowMs;
  const missed = [...plan.reset.map((id) => ({ id, missed: 0 })), ...plan.missed];
  if (missed.length > 0) {
    await c.query(
      'UPDATE files f SET missed_listings = u.missed FROM unnest($1::bigint[], $2::int[]) AS u(id, missed) WHERE f.id = u.id',
      [missed.map((m) => m.id), missed.map((m) => m.missed)],
    );
  }
  const gone: FileRecord[] = [];
  if (plan.gone.length > 0) {
    const r = await c.query<FileRow>(
      `UPDATE files f SET state = 'gone', gone_ms = $3, gone_by = NULL, missed_listings = u.missed, next_retry_ms = NULL, updated_ms = $3
         FROM unnest($1::bigint[], $2::int[]) AS u(id, missed)
       WHERE f.id = u.id AND f.state = ANY($4::text[]) AND f.state <> 'gone' RETURNING f.*`,
      [plan.gone.map((g) => g.id), plan.gone.map((g) => g.missed), now, ABSENCE_STATES],
    );
    const byId = new Map(r.rows.map((row) => [Number(row.id), row]));
    const ordered = plan.gone.flatMap((g) => byId.get(g.id) ?? []);
    for (const row of ordered) gone.push(toRecord(row));
    if (router.enabled) {
      await insertEvents(
        c,
        ordered.flatMap((row) => eventsOf(router, 'gone', row, goneFact(row))),
        now,
      );
    }
  }
  if (plan.back.length > 0) {
    // Listed again: the next listing must look at it, so no digest shortcut may skip its directory.
    await c.query('DELETE FROM listing_digests WHERE source = $1', [source]);
    await c.query(
      `UPDATE files SET state = 'seen', sightings = 0, gone_ms = NULL, gone_by = NULL, missed_listings = 0, ready_ms = NULL, updated_ms = $2
       WHERE id = ANY($1::bigint[]) AND state = 'gone'`,
      [plan.back, now],
    );
  }
  return { missing: plan.missed.length, gone, back: plan.back.length };
}

/** Every version of the path announced before the deletion and not in flight becomes `gone` (idempotent). */
export async function recordDeletion(
  c: Q,
  router: OutboxRouter,
  source: string,
  deletion: UpstreamDeletion,
  nowMs: number,
): Promise<DeletionResult> {
  const states = await c.query<{ state: string }>('SELECT DISTINCT state FROM files WHERE source = $1 AND path = $2', [
    source,
    deletion.path,
  ]);
  const busy = states.rows.some((r) => (IN_FLIGHT_STATES as readonly string[]).includes(r.state));
  const r = await c.query<FileRow>(
    `UPDATE files SET state = 'gone', gone_ms = $3, gone_by = $4, next_retry_ms = NULL, updated_ms = $5
     WHERE source = $1 AND path = $2 AND mtime_ms <= $7 AND state = ANY($6::text[]) AND state <> 'gone' RETURNING *`,
    [source, deletion.path, deletionTimeMs(deletion, nowMs), deletion.by, nowMs, ABSENCE_STATES, deletion.atMs],
  );
  if (router.enabled && r.rows.length > 0)
    await insertEvents(
      c,
      r.rows.flatMap((row) => eventsOf(router, 'gone', row, goneFact(row))),
      nowMs,
    );
  return { gone: r.rows.map(toRecord), known: states.rows.length > 0, busy };
}
