/**
 * Change notifications for a local source: one `fs.watch` (one inotify watch) per directory of the
 * source's window (watch-window.ts), never one per file. A directory's watch reports what happens
 * to the files in it (created, moved in, written), which is all the engine needs: a hint for an
 * early poll.
 *
 * The set is recomputed every quarter of `maxAge` (10 s to 10 min): directories that fell out of
 * the window are let go, new start directories (midnight) are taken; a directory that appears in
 * scope meanwhile is taken at once. Memory and watches follow the window, not the number of files
 * ever seen. Running out of watches falls back to the schedule (watch-set.ts).
 */
import { watch as fsWatch } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { WatchScope } from '../source.js';
import { type WatchDir, WatchSet } from './watch-set.js';
import {
  eachEntry,
  fullPathOf,
  isInScope,
  joinRel,
  resyncDelayMs,
  type WindowReader,
  windowDirs,
} from './watch-window.js';

export type { WatchDir } from './watch-set.js';
export { MAX_WATCHED_DIRS } from './watch-window.js';

export interface DirWatcherOptions {
  /** The source directory (absolute). */
  root: string;
  sourceName: string;
  log: Logger;
  /** Gets the path (relative to root, `/`-separated) of a file that was added or changed. */
  onChange: (relPath: string) => void;
  scope?: (() => WatchScope) | undefined;
  watchDir?: WatchDir;
  nowMs?: () => number;
}

export interface DirWatcher {
  /** The directories watched now (relative, '' is the root). */
  watched(): string[];
  /** Recompute the watch set now (also runs every resync interval). */
  resync(): Promise<void>;
  close(): void;
}

function toPosix(rel: string): string {
  return rel.split(path.sep).join('/');
}

/** Starts watching; resolves once the first watch set is in place (or the fallback is logged). */
export async function startDirWatcher(opts: DirWatcherOptions): Promise<DirWatcher> {
  const watcher = new WindowWatcher(opts);
  await watcher.resync();
  return watcher;
}

class WindowWatcher implements DirWatcher {
  readonly #opts: DirWatcherOptions;
  readonly #set: WatchSet;
  readonly #reader: WindowReader;
  #closed = false;
  #syncing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: DirWatcherOptions) {
    this.#opts = opts;
    const watchDir: WatchDir = opts.watchDir ?? ((dir, listener) => fsWatch(dir, { persistent: false }, listener));
    this.#set = new WatchSet(opts.root, opts.sourceName, opts.log, watchDir, (dir, event, filename) =>
      this.#onEvent(dir, event, filename),
    );
    this.#reader = { root: opts.root, now: opts.nowMs ?? Date.now, stopped: () => this.#closed };
  }

  watched(): string[] {
    return this.#set.dirs().sort();
  }

  resync(): Promise<void> {
    this.#syncing ??= this.#sync()
      .catch((err: unknown) =>
        this.#opts.log.warn(
          { event: 'watch.resync_failed', source: this.#opts.sourceName, err },
          'watch set not recomputed',
        ),
      )
      .finally(() => {
        this.#syncing = undefined;
      });
    return this.#syncing;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#set.close();
  }

  #scope(): WatchScope {
    return this.#opts.scope?.() ?? {};
  }

  async #sync(): Promise<void> {
    const s = this.#scope();
    this.#set.beginAttempt();
    const want = await windowDirs(this.#reader, s);
    if (this.#closed) return;
    for (const rel of this.#set.dirs()) if (!want.has(rel)) this.#set.unwatch(rel);
    for (const rel of want) if (!this.#set.watch(rel) && this.#set.inFallback) break;
    this.#set.endAttempt();
    this.#schedule(s);
  }

  #schedule(s: WatchScope): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.resync(), resyncDelayMs(s));
    this.#timer.unref();
  }

  #emit(rel: string): void {
    try {
      this.#opts.onChange(rel);
    } catch (err) {
      this.#opts.log.warn(
        { event: 'watch.listener_failed', source: this.#opts.sourceName, err },
        'change listener threw',
      );
    }
  }

  /**
   * A directory that appeared (created or moved in): watched first, then read, so a file written
   * into it before its watch existed is reported too; its subdirectories alike.
   */
  async #adopt(start: string): Promise<void> {
    const stack = [start];
    // Bounded: each directory once, and the watch set stops at MAX_WATCHED_DIRS.
    while (stack.length > 0) {
      const dir = stack.pop() as string;
      if (this.#closed || !this.#set.watch(dir)) return;
      await eachEntry(this.#reader, dir, (d) => {
        const rel = joinRel(dir, d.name);
        if (d.isDirectory()) stack.push(rel);
        else this.#emit(rel);
      });
    }
  }

  /** A name in a watched directory changed: a file is news; a new directory in scope is watched. */
  #onEvent(dir: string, event: string, filename: string | Buffer | null): void {
    if (this.#closed) return;
    if (filename === null) {
      this.#emit(dir);
      return;
    }
    const rel = joinRel(dir, toPosix(filename.toString()));
    if (event === 'change') this.#emit(rel);
    // 'rename': created, moved in or out, deleted. lstat tells which.
    else
      void fs.lstat(fullPathOf(this.#opts.root, rel)).then(
        (st) => this.#onRenamed(rel, st.isDirectory()),
        (err: unknown) => {
          // Gone: a removal. A watched directory that went is let go; the listing sees the rest.
          if ((err as { code?: unknown }).code === 'ENOENT') this.#set.unwatch(rel);
        },
      );
  }

  #onRenamed(rel: string, isDirectory: boolean): void {
    if (this.#closed) return;
    if (!isDirectory) this.#emit(rel);
    // Under a start directory, or on the way to one that did not exist yet.
    else if (isInScope(rel, this.#scope()) && !this.#set.has(rel)) void this.#adopt(rel);
  }
}
