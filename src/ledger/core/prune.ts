/**
 * The budget of one prune batch, decided once for files and volumes in every backend: windows
 * are taken in order, each asked for one row past what is left (that row says another batch is
 * needed), until the budget is spent.
 */
import { dirOf } from '../rows.js';

export class PruneBudget {
  #left: number;
  /** More prunable rows remain past this batch. */
  more = false;

  constructor(limit: number) {
    this.#left = limit;
  }

  /** Whether another window fits in this batch; once spent, the windows left are for the next. */
  open(): boolean {
    if (this.#left > 0) return true;
    this.more = true;
    return false;
  }

  /** Rows to ask of the next window: one past what is left. */
  get ask(): number {
    return Math.min(this.#left + 1, Number.MAX_SAFE_INTEGER);
  }

  /** The rows of this batch among those a window gave; the budget shrinks by them. */
  take<T>(rows: readonly T[]): T[] {
    if (rows.length > this.#left) this.more = true;
    const batch = rows.slice(0, this.#left);
    this.#left -= batch.length;
    return batch;
  }
}

/** The directories of pruned rows: a listing digest covering a deleted row must not answer again. */
export function dirsOf(rows: readonly { readonly path: string }[]): string[] {
  return [...new Set(rows.map((r) => dirOf(r.path)))];
}
