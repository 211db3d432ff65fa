/**
 * The notifications a WIS2 source has accepted, on disk before the broker is acknowledged: a
 * crash after the PUBACK loses nothing, and a file whose download failed is still retried
 * after a restart. JSON lines, appended and fsynced (lines that arrive during an fsync share the next); lines older than `keepMs`
 * are dropped when the file is compacted: at open, and once it has doubled since the last
 * compaction (so each line is rewritten a bounded number of times).
 */
import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const fdatasyncAsync = promisify(fdatasync);

/** A notification as stored: what a download and the dedupe need. */
export interface JournalEntry {
  readonly t: 'n';
  readonly at: number;
  readonly id: string;
  readonly path: string;
  readonly href: string;
  readonly mtimeMs: number;
  readonly size?: number;
  readonly method?: string;
  /** Base64 digest. */
  readonly digest?: string;
}

/** The version of a path was fetched (or given up): it leaves the pending set. */
export interface JournalDone {
  readonly t: 'd';
  readonly at: number;
  readonly path: string;
  readonly mtimeMs: number;
}

/** A notification with a `deletion` link: the data at `path` announced up to `mtimeMs` (its pubtime) was removed. */
export interface JournalDeletion {
  readonly t: 'x';
  readonly at: number;
  readonly id: string;
  readonly path: string;
  readonly mtimeMs: number;
}

/** The deletion of `path` at `mtimeMs` was recorded in the ledger: it is not handed out again. */
export interface JournalDeletionDone {
  readonly t: 'y';
  readonly at: number;
  readonly path: string;
  readonly mtimeMs: number;
}

export type JournalLine = JournalEntry | JournalDone | JournalDeletion | JournalDeletionDone;

export class Journal {
  readonly #file: string;
  readonly #keepMs: number;
  #fd: number;
  /** Appends and compactions, one after the other: a compaction swaps the file under the appends. */
  #chain: Promise<void> = Promise.resolve();
  /** The fsync that will cover lines written since the last one started. */
  #sync: Promise<void> | undefined;
  /** The fsync under way (or the last one); settles without rejecting. */
  #lastSync: Promise<void> = Promise.resolve();
  #lines = 0;
  /** Lines right after the last compaction. */
  #compacted = 0;

  /** Opens (creating) the journal and returns the lines younger than `keepMs`, in order. */
  static open(file: string, keepMs: number, nowMs: number): { journal: Journal; lines: JournalLine[] } {
    mkdirSync(path.dirname(file), { recursive: true });
    const lines = readLines(file).filter((l) => nowMs - l.at < keepMs);
    const journal = new Journal(file, keepMs, lines);
    return { journal, lines };
  }

  private constructor(file: string, keepMs: number, lines: JournalLine[]) {
    this.#file = file;
    this.#keepMs = keepMs;
    this.#fd = this.#rewrite(lines);
  }

  /**
   * Appends one line; resolves once it is durable (the caller acknowledges after). The write is
   * a small synchronous one; the fsync runs off the event loop, and lines appended while one is
   * under way share the next.
   */
  append(line: JournalLine): Promise<void> {
    let synced: Promise<void> = Promise.resolve();
    const wrote = this.#chain.then(() => {
      writeSync(this.#fd, `${JSON.stringify(line)}\n`);
      this.#lines++;
      synced = this.#syncSoon();
    });
    this.#chain = wrote.catch(() => undefined);
    return wrote.then(() => synced);
  }

  /** An fsync that starts after the writes made so far (in a microtask: writes of this tick join it). */
  #syncSoon(): Promise<void> {
    this.#sync ??= Promise.resolve().then(() => {
      this.#sync = undefined;
      const fd = this.#fd;
      const run = fdatasyncAsync(fd);
      this.#lastSync = run.catch(() => undefined);
      return run;
    });
    return this.#sync;
  }

  /** Compacts when the file has doubled (and has 1000 lines more) since the last compaction. */
  maybeCompact(nowMs: number): Promise<void> {
    const run = this.#chain.then(async () => {
      if (this.#fd < 0 || this.#lines < 2 * this.#compacted + 1000) return;
      // Every line written so far is durable before the file is replaced.
      await this.#sync?.catch(() => undefined);
      await this.#lastSync;
      const kept = readLines(this.#file).filter((l) => nowMs - l.at < this.#keepMs);
      closeSync(this.#fd);
      this.#fd = this.#rewrite(kept);
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Closes once the appends under way are durable. */
  async close(): Promise<void> {
    await this.#chain;
    await this.#sync?.catch(() => undefined);
    await this.#lastSync;
    if (this.#fd < 0) return;
    closeSync(this.#fd);
    this.#fd = -1;
  }

  /** Writes `lines` to a temporary file, fsyncs and renames it over the journal; returns an fd to append to. */
  #rewrite(lines: readonly JournalLine[]): number {
    const tmp = `${this.#file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      if (lines.length > 0) writeSync(fd, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.#file);
    const dirFd = openSync(path.dirname(this.#file), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    this.#lines = lines.length;
    this.#compacted = lines.length;
    return openSync(this.#file, 'a', 0o600);
  }
}

const LINE_TYPES: readonly string[] = ['n', 'd', 'x', 'y'];

function readLines(file: string): JournalLine[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: JournalLine[] = [];
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    try {
      const l = JSON.parse(raw) as JournalLine;
      // A line cut by a crash mid-write is the only kind that fails here: it was never acknowledged.
      if (LINE_TYPES.includes(l.t) && typeof l.path === 'string' && typeof l.at === 'number') out.push(l);
    } catch {
      // see above
    }
  }
  return out;
}
