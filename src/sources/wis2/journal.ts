/**
 * The notifications a WIS2 source has accepted, on disk before the broker is acknowledged: a
 * crash after the PUBACK loses nothing, and a file whose download failed is still retried
 * after a restart. JSON lines, appended and fsynced one per message; lines older than `keepMs`
 * are dropped when the file is compacted: at open, and once it has doubled since the last
 * compaction (so each line is rewritten a bounded number of times).
 */
import { closeSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';

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

export type JournalLine = JournalEntry | JournalDone;

export class Journal {
  readonly #file: string;
  readonly #keepMs: number;
  #fd: number;
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

  /** Appends one line and makes it durable before returning (the caller acknowledges after). */
  append(line: JournalLine): void {
    const text = `${JSON.stringify(line)}\n`;
    writeSync(this.#fd, text);
    fdatasyncSync(this.#fd);
    this.#lines++;
  }

  /** Compacts when the file has doubled (and has 1000 lines more) since the last compaction. */
  maybeCompact(nowMs: number): void {
    if (this.#lines < 2 * this.#compacted + 1000) return;
    const kept = readLines(this.#file).filter((l) => nowMs - l.at < this.#keepMs);
    closeSync(this.#fd);
    this.#fd = this.#rewrite(kept);
  }

  close(): void {
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
      if ((l.t === 'n' || l.t === 'd') && typeof l.path === 'string' && typeof l.at === 'number') out.push(l);
    } catch {
      // see above
    }
  }
  return out;
}
