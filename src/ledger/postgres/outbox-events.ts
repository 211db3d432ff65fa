/**
 * The outbox rows of PostgreSQL transitions, built from the rows a write returned: one per sink
 * that wants the transition, one message id for all of them (written by `sql/outbox.ts`).
 */
import { randomUUID } from 'node:crypto';
import type { OutboxRouter } from '../outbox-routes.js';
import { processingEvents } from '../outbox-routes.js';
import type { EventFact, EventKind, FetchedItem, FetchFailedItem } from '../records.js';
import type { FileRow } from '../rows.js';
import type { Q } from './pool.js';
import type { FinishedFile } from './sql/finish-processing.js';
import { withPriorVersion } from './sql/mark-fetched.js';
import type { PendingEvent } from './sql/outbox.js';

export function eventsOf(
  router: OutboxRouter,
  kind: EventKind,
  row: FileRow,
  extra: Partial<EventFact>,
): PendingEvent[] {
  const sinks = router.sinks(kind, row.source);
  if (sinks.length === 0) return [];
  const fact: EventFact = { path: row.path, sizeBytes: row.size_bytes, mtimeMs: row.mtime_ms, ...extra };
  const text = JSON.stringify(fact);
  const id = randomUUID();
  return sinks.map((sink) => ({ id, sink, kind, source: row.source, fileId: row.id, fact: text }));
}

/** `fetched` (an update when the path landed before), and `processed` at once when no plugin matches. */
export async function fetchedEvents(
  router: OutboxRouter,
  c: Q,
  items: readonly FetchedItem[],
  rows: readonly FileRow[],
): Promise<PendingEvent[]> {
  const wanted = rows.filter((r) => router.sinks('fetched', r.source).length > 0);
  const prior = await withPriorVersion(
    c,
    wanted.map((r) => r.id),
  );
  const byId = new Map(items.map((i) => [i.id, i]));
  const events: PendingEvent[] = [];
  for (const row of rows) {
    const item = byId.get(row.id) as FetchedItem;
    const fact = { localPath: item.localPath, sha512: item.sha512 ?? null, update: prior.has(row.id) };
    events.push(...eventsOf(router, 'fetched', row, fact));
    // No plugin matches: the file is processed in this same write.
    if (item.done) events.push(...eventsOf(router, 'processed', row, { localPath: item.localPath, outputs: [] }));
  }
  return events;
}

/** `failed` / `quarantined` of fetches (none for an attempt that did not count and goes on). */
export function fetchFailedEvents(
  router: OutboxRouter,
  items: readonly FetchFailedItem[],
  rows: readonly FileRow[],
): PendingEvent[] {
  const byId = new Map(items.map((i) => [i.id, i.failure]));
  const events: PendingEvent[] = [];
  for (const row of rows) {
    const f = byId.get(row.id);
    if (!f || (f.notCounted && !f.quarantine)) continue;
    const fact = {
      stage: 'fetch' as const,
      errorCode: f.errorCode,
      message: row.last_error,
      attempts: row.fetch_attempts,
    };
    events.push(...eventsOf(router, f.quarantine ? 'quarantined' : 'failed', row, fact));
  }
  return events;
}

/** Each output, then processed / failed / quarantined, of every finished file. */
export function finishedEvents(router: OutboxRouter, finished: readonly FinishedFile[]): PendingEvent[] {
  return finished.flatMap(({ result, row, runs }) =>
    processingEvents(row, row.state, result.outcomes, runs).flatMap((e) => eventsOf(router, e.kind, row, e.extra)),
  );
}
