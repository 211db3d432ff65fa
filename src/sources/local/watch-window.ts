/**
 * Which directories a local source watches: its window. The cycle's start directories (date
 * templates; the root otherwise), the directories under them modified within `maxAge` (a new file
 * changes its directory's mtime), and the ancestors of those up to the start directories, so a
 * new directory next to a watched one is seen. A missing start directory (today's, before its
 * first file) is waited for on its nearest existing ancestor. Reads directories only.
 */
import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
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

/** Where the window is read: the source directory, the clock, and whether reading should stop. */
export interface WindowReader {
  readonly root: string;
  readonly now: () => number;
  readonly stopped: () => boolean;
}

export const joinRel = (dir: string, name: string): string => (dir === '' ? name : `${dir}/${name}`);
const parentOf = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
/** Is `a` the same as or above `b`? */
const isAncestorOrSelf = (a: string, b: string): boolean => a === '' || a === b || b.startsWith(`${a}/`);

export function fullPathOf(root: string, rel: string): string {
  return rel === '' ? root : path.join(root, rel);
}

/** The start directories of a scope, relative ('' is the root). */
export function startDirsOf(s: WatchScope): string[] {
  return s.startDirs && s.startDirs.length > 0 ? s.startDirs.map((d) => d.replace(/^\/+|\/+$/g, '')) : [''];
}

/** How long until the window is recomputed. */
export function resyncDelayMs(s: WatchScope): number {
  return s.maxAgeMs === undefined ? MAX_RESYNC_MS : Math.min(MAX_RESYNC_MS, Math.max(MIN_RESYNC_MS, s.maxAgeMs / 4));
}

/** Is the directory `rel` under a start directory, or on the way to one that does not exist yet? */
export function isInScope(rel: string, s: WatchScope): boolean {
  return startDirsOf(s).some((start) => isAncestorOrSelf(start, rel) || isAncestorOrSelf(rel, start));
}

/** Calls `each` for the entries of a directory; one gone or unreadable (or removed while read) ends early. */
export async function eachEntry(
  r: WindowReader,
  dir: string,
  each: (d: Dirent) => void | Promise<void>,
): Promise<void> {
  try {
    for await (const d of await fs.opendir(fullPathOf(r.root, dir), { bufferSize: DIR_READ_BATCH })) {
      if (r.stopped()) return;
      await each(d);
    }
  } catch {
    // What was read stands; the next resync reads it again.
  }
}

function inWindow(r: WindowReader, mtimeMs: number, s: WatchScope): boolean {
  return s.maxAgeMs === undefined || mtimeMs >= r.now() - s.maxAgeMs - MTIME_SLACK_MS;
}

/** Adds to `out` the directories under `start` modified within the window, and their ancestors. */
async function addWindowDirs(r: WindowReader, start: string, s: WatchScope, out: Set<string>): Promise<void> {
  const stack: string[] = [start];
  // Bounded: each directory is visited once; the cap stops a runaway tree.
  while (stack.length > 0 && out.size <= MAX_WATCHED_DIRS) {
    const dir = stack.pop() as string;
    await eachEntry(r, dir, async (d) => {
      if (!d.isDirectory()) return;
      const rel = joinRel(dir, d.name);
      stack.push(rel);
      const st = await fs.lstat(fullPathOf(r.root, rel)).catch(() => undefined);
      if (st?.isDirectory() && inWindow(r, st.mtimeMs, s)) {
        // The directory and its ancestors up to the start directory.
        for (let a = rel; a !== start && !out.has(a); a = parentOf(a)) out.add(a);
      }
    });
  }
}

/** The nearest existing directory at or above `rel` (within the root). */
async function nearestExisting(r: WindowReader, rel: string): Promise<string> {
  for (let a = rel; ; a = parentOf(a)) {
    const st = await fs.stat(fullPathOf(r.root, a)).catch(() => undefined);
    if (st?.isDirectory() || a === '') return a;
  }
}

/** The directories of the window now. */
export async function windowDirs(r: WindowReader, s: WatchScope): Promise<Set<string>> {
  const want = new Set<string>();
  for (const start of startDirsOf(s)) {
    const at = await nearestExisting(r, start);
    want.add(at);
    if (at === start) await addWindowDirs(r, start, s, want);
  }
  return want;
}
