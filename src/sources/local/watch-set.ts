/**
 * The directory watches of a local source, one `fs.watch` (one inotify watch) each, and the
 * fallback state: out of inotify watches (ENOSPC), descriptors (EMFILE/ENFILE) or past
 * MAX_WATCHED_DIRS, every watch is closed, one warning says so, and the source is polled by its
 * schedule until a later attempt succeeds (said once, too).
 */
import type { FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { reportWatchState } from '../../observe/memory.js';
import { fullPathOf, MAX_WATCHED_DIRS } from './watch-window.js';

/** The call that makes one directory's watch: `fs.watch` (a parameter so a host can count them). */
export type WatchDir = (dir: string, listener: (event: string, filename: string | Buffer | null) => void) => FSWatcher;

export type DirEventListener = (dir: string, event: string, filename: string | Buffer | null) => void;

const WATCH_EXHAUSTED = new Set(['ENOSPC', 'EMFILE', 'ENFILE']);

const exhaustedCode = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && WATCH_EXHAUSTED.has(code) ? code : undefined;
};

function fallbackReason(code: string): string {
  if (code === 'TOO_MANY') return `more than ${MAX_WATCHED_DIRS} directories in its window`;
  if (code === 'ENOSPC') return 'out of inotify watches (ENOSPC; raise fs.inotify.max_user_watches)';
  return `out of file descriptors (${code}; raise the open-files limit)`;
}

export class WatchSet {
  readonly #watchers = new Map<string, FSWatcher>();
  /** Set while polling by schedule only: the code that made watching fail. */
  #fallback: string | undefined;
  /** The fallback's warning was logged and watching has not come back since: one line per outage. */
  #announced = false;

  constructor(
    private readonly root: string,
    private readonly sourceName: string,
    private readonly log: Logger,
    private readonly watchDir: WatchDir,
    private readonly onEvent: DirEventListener,
  ) {}

  get size(): number {
    return this.#watchers.size;
  }
  get inFallback(): boolean {
    return this.#fallback !== undefined;
  }
  has(rel: string): boolean {
    return this.#watchers.has(rel);
  }
  dirs(): string[] {
    return [...this.#watchers.keys()];
  }

  /** Adds a watch; false when the kernel refuses (fallback entered) or the directory is gone. */
  watch(rel: string): boolean {
    if (this.#fallback !== undefined || this.#watchers.has(rel)) return this.#watchers.has(rel);
    if (this.#watchers.size >= MAX_WATCHED_DIRS) {
      this.#enterFallback('TOO_MANY', undefined);
      return false;
    }
    let w: FSWatcher;
    try {
      w = this.watchDir(fullPathOf(this.root, rel), (event, filename) => this.onEvent(rel, event, filename));
    } catch (err) {
      const code = exhaustedCode(err);
      if (code !== undefined) this.#enterFallback(code, err);
      // ENOENT and the like: the directory went away since it was listed; the next resync decides.
      return false;
    }
    w.on('error', (err: unknown) => this.#onWatchError(rel, err));
    this.#watchers.set(rel, w);
    this.report();
    return true;
  }

  unwatch(rel: string): void {
    const w = this.#watchers.get(rel);
    if (!w) return;
    this.#watchers.delete(rel);
    w.close();
    this.report();
  }

  closeAll(): void {
    for (const rel of [...this.#watchers.keys()]) this.unwatch(rel);
  }

  /** Before a new attempt at the whole set: after a fallback each one is tried quietly. */
  beginAttempt(): void {
    this.#fallback = undefined;
  }

  /** After an attempt: back from a fallback that was announced, say so once. */
  endAttempt(): void {
    if (this.#fallback === undefined && this.#announced) {
      this.#announced = false;
      this.log.info(
        { event: 'watch.resumed', source: this.sourceName, dirs: this.#watchers.size },
        `local source "${this.sourceName}": change notifications on again (${this.#watchers.size} directories)`,
      );
    }
    this.report();
  }

  /** Closes everything for good. */
  close(): void {
    this.closeAll();
    this.#fallback = undefined;
    this.report();
  }

  report(): void {
    reportWatchState(this.sourceName, { dirs: this.#watchers.size, fallback: this.#fallback !== undefined });
  }

  #onWatchError(rel: string, err: unknown): void {
    const code = exhaustedCode(err);
    if (code !== undefined) {
      this.#enterFallback(code, err);
      return;
    }
    // The directory itself is gone or unreadable: let it go, the next resync decides again.
    this.unwatch(rel);
    this.log.debug({ event: 'watch.dir_lost', source: this.sourceName, dir: rel, err }, 'directory watch ended');
  }

  #enterFallback(code: string, err: unknown): void {
    this.closeAll();
    this.#fallback = code;
    this.report();
    if (this.#announced) return;
    this.#announced = true;
    this.log.warn(
      {
        event: 'watch.fallback',
        source: this.sourceName,
        code,
        ...(err instanceof Error && { err: { message: err.message } }),
      },
      `local source "${this.sourceName}": change notifications off, ${fallbackReason(code)}; polling by schedule only`,
    );
  }
}
