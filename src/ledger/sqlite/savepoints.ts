/**
 * Batches whose items may each find their claim lost: one write transaction for the batch, a
 * savepoint (a nested better-sqlite3 transaction) per item, so a lost claim undoes only that
 * item's writes and the others commit.
 */
import type Database from 'better-sqlite3';

/** Thrown inside an item's savepoint to undo its writes: this owner no longer holds its claim. */
export class ClaimLostSignal extends Error {}

export function eachInSavepoint<T, S>(
  db: Database.Database,
  items: readonly T[],
  one: (item: T) => S,
): Array<S | 'claim-lost'> {
  const out: Array<S | 'claim-lost'> = [];
  db.transaction(() => {
    for (const item of items) {
      try {
        out.push(db.transaction(() => one(item))());
      } catch (err) {
        if (!(err instanceof ClaimLostSignal)) throw err;
        out.push('claim-lost');
      }
    }
  }).immediate();
  return out;
}
