/**
 * The SQLite outbox: event rows written in the caller's transaction (one row per sink that
 * wants the transition, one message id for all of them), and the reads and acks of the
 * dispatcher. With no routes, nothing is written and nothing is asked.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { EventOutbox } from '../ledger.js';
import { OutboxRouter, processingEvents } from '../outbox-routes.js';
import type {
  EventFact,
  EventKind,
  FileState,
  OutboxEvent,
  OutboxRoute,
  OutboxStats,
  PluginOutcome,
  ProductEventKind,
  VolumeEventKind,
} from '../records.js';
import { type FileRow, type RunRow, toOutboxEvent } from '../rows.js';
import type { Statements } from './statements.js';

export class SqliteOutbox implements EventOutbox {
  readonly #db: Database.Database;
  readonly #s: Statements;
  readonly #router = new OutboxRouter();

  constructor(db: Database.Database, s: Statements) {
    this.#db = db;
    this.#s = s;
  }

  get enabled(): boolean {
    return this.#router.enabled;
  }

  wants(kind: EventKind, source: string): boolean {
    return this.#router.sinks(kind, source).length > 0;
  }

  setOutbox(routes: readonly OutboxRoute[]): void {
    this.#router.set(routes);
  }

  /** One outbox row per interested sink, in the caller's transaction. */
  emit(kind: EventKind, row: FileRow, extra: Partial<EventFact>, nowMs: number): void {
    const sinks = this.#router.sinks(kind, row.source);
    if (sinks.length === 0) return;
    const fact: EventFact = { path: row.path, sizeBytes: row.size_bytes, mtimeMs: row.mtime_ms, ...extra };
    const text = JSON.stringify(fact);
    const id = randomUUID();
    for (const sink of sinks)
      this.#s.eventInsert.run({ id, sink, kind, source: row.source, fileId: row.id, at: nowMs, fact: text });
  }

  /** One outbox row per sink that wants this volume event, in the volume ledger's transaction. */
  emitVolume(kind: VolumeEventKind, source: string, volumeId: number, fact: EventFact, nowMs: number): void {
    if (!this.#router.enabled) return;
    const sinks = this.#router.sinks(kind, source);
    if (sinks.length === 0) return;
    const text = JSON.stringify(fact);
    const id = randomUUID();
    for (const sink of sinks)
      this.#s.volumeEventInsert.run({ id, sink, kind, source, volumeId, at: nowMs, fact: text });
  }

  /** A product went late or is on time again: no file goes with it (file_id 0). */
  async emitProductEvent(kind: ProductEventKind, source: string, fact: EventFact, nowMs: number): Promise<void> {
    const sinks = this.#router.sinks(kind, source);
    if (sinks.length === 0) return;
    const text = JSON.stringify(fact);
    const id = randomUUID();
    this.#db.transaction(() => {
      for (const sink of sinks) this.#s.eventInsert.run({ id, sink, kind, source, fileId: 0, at: nowMs, fact: text });
    })();
  }

  /** Events of one file's processing outcome (inside its savepoint: a lost claim writes none). */
  emitProcessing(
    id: number,
    state: FileState,
    outcomes: readonly PluginOutcome[],
    runs: readonly RunRow[],
    nowMs: number,
  ): void {
    const row = this.#s.byId.get(id) as FileRow;
    for (const e of processingEvents(row, state, outcomes, runs)) this.emit(e.kind, row, e.extra, nowMs);
  }

  async pendingEvents(sink: string, limit: number): Promise<OutboxEvent[]> {
    return this.#s.eventsPending.all(sink, limit).map(toOutboxEvent);
  }

  async markEventsSent(sink: string, seqs: readonly number[], nowMs: number): Promise<void> {
    this.#db.transaction(() => {
      for (const seq of seqs) this.#s.eventSent.run({ seq, sink, now: nowMs });
    })();
  }

  async outboxStats(): Promise<OutboxStats[]> {
    return this.#router.stats(this.#s.outboxPending.all());
  }

  async pruneSentEvents(beforeMs: number): Promise<number> {
    return this.#s.pruneSent.run(beforeMs).changes;
  }
}
