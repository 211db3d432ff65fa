/**
 * What a WIS2 source knows of the notifications it took: the pending set (one version per data
 * path, the newest) and, for the keep window, the message ids and (path, digest) pairs already
 * taken, so that a re-delivery, a re-publication or the same notification from another broker
 * is recognised. Deletions (`deletion` links) wait here until the engine has recorded them; a
 * deletion drops a pending notification it makes moot. Journal replay and live messages go
 * through the same `apply`.
 */
import type { Logger } from 'pino';
import type { JournalDeletion, JournalEntry, JournalLine } from './journal.js';

/** A line a message brings: a notification of data, or of its deletion. */
export type Taken = JournalEntry | JournalDeletion;

/** Pending notifications held at most: past this the oldest is dropped, with a warning. */
const MAX_PENDING = 100_000;

export interface Pending {
  entry: JournalEntry;
  /** Size from a HEAD, when the notification gave no `length`. */
  headSize?: number;
}

function contentKey(e: Pick<JournalEntry, 'path' | 'method' | 'digest'>): string | undefined {
  return e.digest === undefined ? undefined : `${e.path}\0${e.method}:${e.digest}`;
}

export class Wis2State {
  readonly pending = new Map<string, Pending>();
  /** Deletions not yet recorded by the ledger, the newest per path. */
  readonly deletions = new Map<string, JournalDeletion>();
  readonly #seenIds = new Map<string, number>();
  readonly #seenContent = new Map<string, number>();
  readonly #keepMs: number;
  readonly #log: Logger;

  constructor(keepMs: number, log: Logger) {
    this.#keepMs = keepMs;
    this.#log = log;
  }

  /** Already taken: the same message id, the same content of the path, or the same version pending. */
  isDuplicate(e: Taken): boolean {
    if (e.t === 'x') return this.#seenIds.has(e.id) || this.deletions.get(e.path)?.mtimeMs === e.mtimeMs;
    const key = contentKey(e);
    return (
      this.#seenIds.has(e.id) ||
      (key !== undefined && this.#seenContent.has(key)) ||
      this.pending.get(e.path)?.entry.mtimeMs === e.mtimeMs
    );
  }

  /** Applies one journal line (replay and live messages alike). */
  apply(line: JournalLine): void {
    if (line.t === 'x' || line.t === 'y') {
      this.#applyDeletion(line);
      return;
    }
    if (line.t === 'd') {
      const p = this.pending.get(line.path);
      if (p && p.entry.mtimeMs === line.mtimeMs) this.pending.delete(line.path);
      return;
    }
    this.#seenIds.set(line.id, line.at);
    const key = contentKey(line);
    if (key) this.#seenContent.set(key, line.at);
    const current = this.pending.get(line.path);
    // An older version arriving late is not wanted: the landing holds one version per path.
    if (current && current.entry.mtimeMs >= line.mtimeMs) return;
    this.pending.delete(line.path);
    this.pending.set(line.path, { entry: line });
    if (this.pending.size > MAX_PENDING) {
      const [oldest] = this.pending.keys();
      if (oldest === undefined) return;
      this.pending.delete(oldest);
      this.#log.warn(
        { event: 'wis2.pending_dropped', path: oldest, pending: MAX_PENDING },
        `more than ${MAX_PENDING} notifications pending: the oldest (${oldest}) is dropped`,
      );
    }
  }

  #applyDeletion(line: JournalLine & { t: 'x' | 'y' }): void {
    const current = this.deletions.get(line.path);
    if (line.t === 'y') {
      if (current && current.mtimeMs === line.mtimeMs) this.deletions.delete(line.path);
      return;
    }
    this.#seenIds.set(line.id, line.at);
    // The file announced before the deletion is not fetched any more; one announced after it is.
    const p = this.pending.get(line.path);
    if (p && p.entry.mtimeMs <= line.mtimeMs) this.pending.delete(line.path);
    if (!current || current.mtimeMs < line.mtimeMs) this.deletions.set(line.path, line);
  }

  /** Undoes `apply` of a notification that could not be made durable: its re-delivery is taken. */
  forget(e: Taken): void {
    this.#seenIds.delete(e.id);
    if (e.t === 'x') {
      if (this.deletions.get(e.path) === e) this.deletions.delete(e.path);
      return;
    }
    const key = contentKey(e);
    if (key) this.#seenContent.delete(key);
    if (this.pending.get(e.path)?.entry === e) this.pending.delete(e.path);
  }

  /** Drops what is older than the keep window. */
  expire(nowMs: number): void {
    for (const m of [this.#seenIds, this.#seenContent]) {
      for (const [k, at] of m) {
        if (nowMs - at < this.#keepMs) break; // insertion order is arrival order
        m.delete(k);
      }
    }
    for (const [p, d] of this.deletions) {
      if (nowMs - d.at < this.#keepMs) continue;
      this.deletions.delete(p);
      this.#log.warn(
        { event: 'wis2.deletion_expired', path: p },
        `deletion of ${p} expired after the keep window before the ledger could record it`,
      );
    }
    for (const [p, { entry }] of this.pending) {
      if (nowMs - entry.at < this.#keepMs) continue;
      this.pending.delete(p);
      this.#log.warn(
        { event: 'wis2.notification_expired', path: p },
        `notification for ${p} expired after the keep window without a fetch`,
      );
    }
  }
}
