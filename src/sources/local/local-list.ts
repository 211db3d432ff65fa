/**
 * Listing a local directory: names first (one readdir, capped), then lstat in batches. Entries
 * carry lstat data (a symlink is a 'link'); mtimes are exact to the millisecond.
 */
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { EntryType, RemoteEntry } from '../source.js';
import { childOf, classifyLocal, type LocalContext } from './local-context.js';

/** A directory bigger than this is listed only this far, with a warning (memory bound). */
const MAX_LIST_ENTRIES = 1_000_000;
/** lstat calls in flight while listing: enough to hide disk latency, few enough for the libuv pool. */
const STAT_BATCH = 64;

function typeOf(st: Stats): EntryType | undefined {
  if (st.isSymbolicLink()) return 'link';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  return undefined;
}

/** The entry of `relPath` from its stats; undefined for what is neither file, directory nor link. */
function entryOf(relPath: string, name: string, st: Stats): RemoteEntry | undefined {
  const type = typeOf(st);
  if (type === undefined) return undefined;
  return { path: relPath, name, type, sizeBytes: st.size, mtimeMs: Math.round(st.mtimeMs), mtimePrecision: 'ms' };
}

/** The names in a directory, up to MAX_LIST_ENTRIES (past it, one warning). */
async function readNames(ctx: LocalContext, full: string, rel: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const dirent of await fs.opendir(full)) {
      names.push(dirent.name);
      if (names.length >= MAX_LIST_ENTRIES) {
        ctx.log.warn(
          { event: 'listing.truncated', source: ctx.name, dir: rel, entries: names.length },
          'directory listing cut at the entry cap',
        );
        break;
      }
    }
  } catch (err) {
    throw classifyLocal(ctx, err, rel);
  }
  return names;
}

/** One name's entry; undefined when it went between readdir and lstat (the next listing agrees). */
async function statName(ctx: LocalContext, full: string, rel: string, name: string): Promise<RemoteEntry | undefined> {
  const relPath = childOf(rel, name);
  let st: Stats;
  try {
    st = await fs.lstat(path.join(full, name));
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw classifyLocal(ctx, err, relPath);
  }
  return entryOf(relPath, name, st);
}

/** The entries of the directory `rel` (local path `full`). */
export async function listLocalDir(
  ctx: LocalContext,
  full: string,
  rel: string,
  signal: AbortSignal,
): Promise<RemoteEntry[]> {
  const names = await readNames(ctx, full, rel);
  const entries: RemoteEntry[] = [];
  for (let i = 0; i < names.length; i += STAT_BATCH) {
    signal.throwIfAborted();
    const batch = await Promise.all(names.slice(i, i + STAT_BATCH).map((name) => statName(ctx, full, rel, name)));
    for (const e of batch) if (e !== undefined) entries.push(e);
  }
  return entries;
}

/** The entry of `rel` (local path `full`), links followed; undefined when there is none. */
export async function statLocal(ctx: LocalContext, full: string, rel: string): Promise<RemoteEntry | undefined> {
  let st: Stats;
  try {
    st = await fs.stat(full);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw classifyLocal(ctx, err, rel);
  }
  return entryOf(rel, path.posix.basename(rel), st);
}
