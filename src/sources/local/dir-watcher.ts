/**
 * Change notifications for a local source: one `fs.watch` (one inotify watch) per directory of the
 * source's window, never one per file. A directory's watch reports what happens to the files in it
 * (created, moved in, written), which is all the engine needs: a hint for an early poll.
 *
 * Which directories: the cycle's start directories (date templates; the root otherwise), the
 * directories under them modified within `maxAge` (a new file changes its directory's mtime), and
 * the ancestors of those up to the start directories, so a new directory next to a watched one is
 * seen. A missing start directory (today's, before its first file) is waited for on its nearest
 * existing ancestor. The set is recomputed every `resyncMs`: directories that fell out of the
 * window are let go, new start directories (midnight) are taken. Memory and watches follow the
 * window, not the number of files ever seen.
 *
 * Out of inotify watches (ENOSPC) or descriptors (EMFILE): every watch is closed, one warning says
 * so, and the source is polled by its schedule; each later resync tries again quietly and says
 * once when watching is back.
 */
import type { Dirent } from 'node:fs';
import { type FSWatcher, watch as fsWatch } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { reportWatchState } from '../../observe/memory.js';
import type { WatchScope } from '../source.js';

/** Between two recomputations of the watch set: a quarter of the window, within these bounds. */
const MIN_RESYNC_MS = 10_000;
const MAX_RESYNC_MS = 10 * 60_000;
/** A directory modified this long before the window's start still counts (clock skew, coarse mtimes). */
const MTIME_SLACK_MS = 60_000;
/** Entries read per readdir call: a directory of thousands of files costs a few calls, not one per 32. */
const DIR_READ_BATCH = 1024;
/** Most directories watched; past it the source is polled by schedule (as when the kernel says no). */
export const MAX_WATCHED_DIRS = 100_000;

/** The call that makes one directory's watch: `fs.watch` (a parameter so a host can count them). */
export type WatchDir = (dir: string, listener: (event: string, filename: string | Buffer | null) => void) => FSWatcher;

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
  /** Recompute the watch set now (also runs every resyncMs). */
  resync(): Promise<void>;
  close(): void;
}

const WATCH_EXHAUSTED = new Set(['ENOSPC', 'EMFILE', 'ENFILE']);

function toPosix(rel: string): string {
  return rel.split(path.sep).join('/');
}

const join = (dir: string, name: string) => (dir === '' ? name : `${dir}/${name}`);
const parentOf = (rel: string) => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
/** Is `a` the same as or above `b`? */
const isAncestorOrSelf = (a: string, b: string) => a === '' || a === b || b.startsWith(`${a}/`);

/** Starts watching; resolves once the first watch set is in place (or the fallback is logged). */
export async function startDirWatcher(opts: DirWatcherOptions): Promise<DirWatcher> {
  const watchDir: WatchDir = opts.watchDir ?? ((dir, listener) => fsWatch(dir, { persistent: false }, listener));
  const now = opts.nowMs ?? Date.now;
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  /** Set while polling by schedule only: the code that made watching fail. */
  let fallback: string | undefined;
  /** The fallback's warning was logged and watching has not come back since: one line per outage. */
  let announced = false;
  let syncing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const scopeNow = (): WatchScope => opts.scope?.() ?? {};
  const startDirs = (s: WatchScope): string[] =>
    s.startDirs && s.startDirs.length > 0 ? s.startDirs.map((d) => d.replace(/^\/+|\/+$/g, '')) : [''];
  const resyncMs = (s: WatchScope): number =>
    s.maxAgeMs === undefined ? MAX_RESYNC_MS : Math.min(MAX_RESYNC_MS, Math.max(MIN_RESYNC_MS, s.maxAgeMs / 4));

  const full = (rel: string) => (rel === '' ? opts.root : path.join(opts.root, rel));

  function unwatch(rel: string): void {
    const w = watchers.get(rel);
    if (!w) return;
    watchers.delete(rel);
    w.close();
    report();
  }

  function closeAll(): void {
    for (const rel of [...watchers.keys()]) unwatch(rel);
  }

  function enterFallback(code: string, err: unknown): void {
    closeAll();
    fallback = code;
    report();
    if (announced) return;
    announced = true;
    const why =
      code === 'TOO_MANY'
        ? `more than ${MAX_WATCHED_DIRS} directories in its window`
        : code === 'ENOSPC'
          ? 'out of inotify watches (ENOSPC; raise fs.inotify.max_user_watches)'
          : `out of file descriptors (${code}; raise the open-files limit)`;
    opts.log.warn(
      {
        event: 'watch.fallback',
        source: opts.sourceName,
        code,
        ...(err instanceof Error && { err: { message: err.message } }),
      },
      `local source "${opts.sourceName}": change notifications off, ${why}; polling by schedule only`,
    );
  }

  function emit(rel: string): void {
    try {
      opts.onChange(rel);
    } catch (err) {
      opts.log.warn({ event: 'watch.listener_failed', source: opts.sourceName, err }, 'change listener threw');
    }
  }

  /** Adds a watch; false when the kernel refuses (fallback entered) or the directory is gone. */
  function watch(rel: string): boolean {
    if (closed || fallback !== undefined || watchers.has(rel)) return watchers.has(rel);
    if (watchers.size >= MAX_WATCHED_DIRS) {
      enterFallback('TOO_MANY', undefined);
      return false;
    }
    let w: FSWatcher;
    try {
      w = watchDir(full(rel), (event, filename) => onEvent(rel, event, filename));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && WATCH_EXHAUSTED.has(code)) enterFallback(code, err);
      // ENOENT and the like: the directory went away since it was listed; the next resync decides.
      return false;
    }
    w.on('error', (err: unknown) => {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && WATCH_EXHAUSTED.has(code)) enterFallback(code, err);
      else {
        // The directory itself is gone or unreadable: let it go, the next resync decides again.
        unwatch(rel);
        opts.log.debug({ event: 'watch.dir_lost', source: opts.sourceName, dir: rel, err }, 'directory watch ended');
      }
    });
    watchers.set(rel, w);
    report();
    return true;
  }

  function inWindow(mtimeMs: number, s: WatchScope): boolean {
    return s.maxAgeMs === undefined || mtimeMs >= now() - s.maxAgeMs - MTIME_SLACK_MS;
  }

  /**
   * The directories to watch under `start` (itself included): those modified within the window and
   * their ancestors. Reads directories only (file entries are skipped by their dirent type).
   */
  async function walk(start: string, s: WatchScope, out: Set<string>): Promise<void> {
    const stack: string[] = [start];
    // Bounded: each directory is visited once; the cap stops a runaway tree.
    while (stack.length > 0 && out.size <= MAX_WATCHED_DIRS) {
      const dir = stack.pop() as string;
      await eachEntry(dir, async (d) => {
        if (!d.isDirectory()) return;
        const rel = join(dir, d.name);
        stack.push(rel);
        const st = await fs.lstat(full(rel)).catch(() => undefined);
        if (st?.isDirectory() && inWindow(st.mtimeMs, s)) {
          // The directory and its ancestors up to the start directory.
          for (let a = rel; a !== start && !out.has(a); a = parentOf(a)) out.add(a);
        }
      });
    }
  }

  /** Calls `each` for the entries of a directory; one gone or unreadable (or removed while read) ends early. */
  async function eachEntry(dir: string, each: (d: Dirent) => void | Promise<void>): Promise<void> {
    try {
      for await (const d of await fs.opendir(full(dir), { bufferSize: DIR_READ_BATCH })) {
        if (closed) return;
        await each(d);
      }
    } catch {
      // What was read stands; the next resync reads it again.
    }
  }

  /** The nearest existing directory at or above `rel` (within the root). */
  async function nearestExisting(rel: string): Promise<string> {
    for (let a = rel; ; a = parentOf(a)) {
      const st = await fs.stat(full(a)).catch(() => undefined);
      if (st?.isDirectory() || a === '') return a;
    }
  }

  async function computeSet(s: WatchScope): Promise<Set<string>> {
    const want = new Set<string>();
    for (const start of startDirs(s)) {
      const at = await nearestExisting(start);
      want.add(at);
      if (at === start) await walk(start, s, want);
    }
    return want;
  }

  async function sync(): Promise<void> {
    const s = scopeNow();
    // After a fallback each resync is one quiet attempt.
    fallback = undefined;
    const want = await computeSet(s);
    if (closed) return;
    for (const rel of [...watchers.keys()]) if (!want.has(rel)) unwatch(rel);
    for (const rel of want) {
      watch(rel);
      if (fallback !== undefined) break;
    }
    if (fallback === undefined && announced) {
      announced = false;
      opts.log.info(
        { event: 'watch.resumed', source: opts.sourceName, dirs: watchers.size },
        `local source "${opts.sourceName}": change notifications on again (${watchers.size} directories)`,
      );
    }
    report();
    schedule(s);
  }

  function report(): void {
    reportWatchState(opts.sourceName, { dirs: watchers.size, fallback: fallback !== undefined });
  }

  function schedule(s: WatchScope): void {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => void resync(), resyncMs(s));
    timer.unref();
  }

  function resync(): Promise<void> {
    syncing ??= sync()
      .catch((err: unknown) =>
        opts.log.warn({ event: 'watch.resync_failed', source: opts.sourceName, err }, 'watch set not recomputed'),
      )
      .finally(() => {
        syncing = undefined;
      });
    return syncing;
  }

  /**
   * A directory that appeared (created or moved in): watched first, then read, so a file written
   * into it before its watch existed is reported too; its subdirectories alike.
   */
  async function adopt(start: string): Promise<void> {
    const stack = [start];
    // Bounded: each directory once, and watch() stops at MAX_WATCHED_DIRS.
    while (stack.length > 0) {
      const dir = stack.pop() as string;
      if (closed || !watch(dir)) return;
      await eachEntry(dir, (d) => {
        const rel = join(dir, d.name);
        if (d.isDirectory()) stack.push(rel);
        else emit(rel);
      });
    }
  }

  /** A name in a watched directory changed: a file is news; a new directory in scope is watched. */
  function onEvent(dir: string, event: string, filename: string | Buffer | null): void {
    if (closed) return;
    if (filename === null) {
      emit(dir);
      return;
    }
    const rel = join(dir, toPosix(filename.toString()));
    if (event === 'change') {
      emit(rel);
      return;
    }
    // 'rename': created, moved in or out, deleted. lstat tells which.
    void fs.lstat(full(rel)).then(
      (st) => {
        if (closed) return;
        if (!st.isDirectory()) {
          emit(rel);
          return;
        }
        const s = scopeNow();
        const starts = startDirs(s);
        // Under a start directory, or on the way to one that did not exist yet.
        if (!starts.some((st0) => isAncestorOrSelf(st0, rel) || isAncestorOrSelf(rel, st0))) return;
        if (!watchers.has(rel)) void adopt(rel);
      },
      (err: unknown) => {
        // Gone: a removal. A watched directory that went is let go; the listing sees the rest.
        if ((err as { code?: unknown }).code === 'ENOENT') unwatch(rel);
      },
    );
  }

  await resync();
  return {
    watched: () => [...watchers.keys()].sort(),
    resync,
    close() {
      closed = true;
      clearTimeout(timer);
      closeAll();
      fallback = undefined;
      report();
    },
  };
}
