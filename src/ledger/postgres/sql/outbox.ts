/** Outbox rows: written in a transition's transaction (one statement), read and acked by the dispatcher. */
import type { EventKind, OutboxEvent } from '../../records.js';
import { type EventRow, toOutboxEvent } from '../../rows.js';
import type { Q } from '../pool.js';

/** One outbox row to write: one per sink that wants the transition, one message id for all of them. */
export interface PendingEvent {
  readonly id: string;
  readonly sink: string;
  readonly kind: EventKind;
  readonly source: string;
  readonly fileId: number;
  readonly fact: string;
  /** The volume version of a volume event (its `fileId` is 0). */
  readonly volumeId?: number;
}

export async function insertEvents(c: Q, events: readonly PendingEvent[], nowMs: number): Promise<void> {
  if (events.length === 0) return;
  await c.query(
    `INSERT INTO events (id, sink, kind, source, file_id, at_ms, fact, volume_id)
     SELECT id, sink, kind, source, file_id, $1, fact::jsonb, volume_id
     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[]) WITH ORDINALITY
       AS u(id, sink, kind, source, file_id, fact, volume_id, ord)
     ORDER BY ord`,
    [
      nowMs,
      events.map((e) => e.id),
      events.map((e) => e.sink),
      events.map((e) => e.kind),
      events.map((e) => e.source),
      events.map((e) => e.fileId),
      events.map((e) => e.fact),
      events.map((e) => e.volumeId ?? null),
    ],
  );
}

export async function pendingEvents(c: Q, sink: string, limit: number): Promise<OutboxEvent[]> {
  const r = await c.query<EventRow>(
    `SELECT seq, id, sink, kind, source, file_id, at_ms, fact, volume_id FROM events
     WHERE sink = $1 AND sent_ms IS NULL ORDER BY seq LIMIT $2`,
    [sink, limit],
  );
  return r.rows.map(toOutboxEvent);
}

export async function markEventsSent(c: Q, sink: string, seqs: readonly number[], nowMs: number): Promise<void> {
  if (seqs.length === 0) return;
  await c.query('UPDATE events SET sent_ms = $3 WHERE sink = $1 AND seq = ANY($2::bigint[]) AND sent_ms IS NULL', [
    sink,
    seqs,
    nowMs,
  ]);
}

export async function pendingPerSink(c: Q): Promise<Array<{ sink: string; pending: number; oldest: number | null }>> {
  const r = await c.query<{ sink: string; pending: number; oldest: number | null }>(
    'SELECT sink, count(*) AS pending, min(at_ms) AS oldest FROM events WHERE sent_ms IS NULL GROUP BY sink',
  );
  return r.rows;
}

export async function pruneSentEvents(c: Q, beforeMs: number): Promise<number> {
  const r = await c.query('DELETE FROM events WHERE sent_ms IS NOT NULL AND sent_ms < $1', [beforeMs]);
  return r.rowCount ?? 0;
}
