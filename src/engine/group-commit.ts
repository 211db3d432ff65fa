/**
 * Group commit: concurrent transfers each hand in one item (a file fetched, an outcome, a plugin
 * run starting); the batcher writes them with one ledger call per few milliseconds or `maxItems`
 * items, whichever comes first. Each caller's promise settles with its own item's result, so the
 * per-file logic keeps its shape and its order (rename, then the commit that follows it).
 */

export interface GroupCommitOptions {
  /** Longest an item waits for company before its batch is written. */
  readonly maxDelayMs: number;
  /** A batch this size is written at once. */
  readonly maxItems: number;
}

/** Defaults: a few ms is far below a file's transfer time, and enough for 8 lanes to meet. */
export const GROUP_COMMIT_DEFAULTS: GroupCommitOptions = { maxDelayMs: 4, maxItems: 128 };

interface Pending<I, R> {
  item: I;
  resolve(r: R): void;
  reject(err: unknown): void;
}

export class GroupCommit<I, R> {
  readonly #write: (items: I[]) => Promise<readonly R[]>;
  readonly #opts: GroupCommitOptions;
  #queue: Pending<I, R>[] = [];
  #timer: NodeJS.Timeout | undefined;

  /** `write` gets the items of one batch and returns one result per item, in order. */
  constructor(write: (items: I[]) => Promise<readonly R[]>, opts: GroupCommitOptions = GROUP_COMMIT_DEFAULTS) {
    this.#write = write;
    this.#opts = opts;
  }

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (this.#queue.length >= this.#opts.maxItems) this.flush();
      else this.#timer ??= setTimeout(() => this.flush(), this.#opts.maxDelayMs);
    });
  }

  /** Write what is queued now (the cycle calls it before it waits for the last items). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    this.#write(batch.map((p) => p.item)).then(
      (results) => {
        for (const [i, p] of batch.entries()) p.resolve(results[i] as R);
      },
      // A failed write fails every item of the batch: each caller handles it as its own failure.
      (err: unknown) => {
        for (const p of batch) p.reject(err);
      },
    );
  }
}
