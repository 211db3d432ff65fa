/**
 * The local source's watches follow its window: one inotify watch per directory in it (the start
 * directories, directories modified within maxAge, their ancestors), none per file, and the set
 * moves with the window. Counted in the kernel's own table (/proc/self/fdinfo of the inotify
 * descriptors), so a watcher that watches files cannot pass.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { watchStates } from '../../src/observe/memory.js';
import { startDirWatcher } from '../../src/sources/local/dir-watcher.js';
import { createLocalSource } from '../../src/sources/local/local-source.js';
import type { Source } from '../../src/sources/source.js';
import { walkSource } from '../../src/sources/walk.js';
import { collectingLogger } from '../helpers/source-test-utils.js';
import { waitFor } from '../helpers/wait-for.js';

/** inotify watches held by this process, from the kernel. */
function inotifyWatches(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target = '';
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== 'anon_inode:inotify') continue;
    n += readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('inotify wd:')).length;
  }
  return n;
}

const OLD = new Date(Date.now() - 86_400_000);
let root: string;
let source: Source;
let stop: AbortController;

/** `dirs` directories of `files` files each; `old` ones get yesterday's mtime (files and directory). */
async function makeDirs(names: string[], files: number, old: boolean): Promise<void> {
  for (const name of names) {
    const dir = path.join(root, name);
    await fs.mkdir(dir, { recursive: true });
    for (let i = 0; i < files; i++) {
      const f = path.join(dir, `f${i}.bufr`);
      await fs.writeFile(f, 'x');
      if (old) await fs.utimes(f, OLD, OLD);
    }
    if (old) await fs.utimes(dir, OLD, OLD);
  }
}

beforeEach(async () => {
  stop = new AbortController();
  root = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'poller-watch-scope-')));
  source = createLocalSource({
    name: 'scope',
    protocol: 'file',
    host: '',
    port: 0,
    user: '',
    rootPath: root,
    tls: { mode: 'none', insecure: false },
    timezone: 'UTC',
    maxConnections: 1,
    connectTimeoutMs: 1000,
    dataTimeoutMs: 1000,
    log: collectingLogger().log,
  });
});

afterEach(async () => {
  stop.abort();
  await source.close();
  await fs.rm(root, { recursive: true, force: true });
});

describe('local source: watches bounded by the directories in its window', () => {
  it('watches the root and the two recent directories of 42, not their 840 files', async () => {
    await makeDirs(
      Array.from({ length: 40 }, (_, i) => `old/d${i}`),
      20,
      true,
    );
    await fs.utimes(path.join(root, 'old'), OLD, OLD);
    await makeDirs(['new/a', 'new/b'], 20, false);
    const before = inotifyWatches();
    const seen: string[] = [];
    await source.watch!((rel) => seen.push(rel), {
      signal: stop.signal,
      scope: () => ({ maxAgeMs: 120_000 }),
    });
    // The root, new/ (the ancestor), new/a, new/b.
    expect(inotifyWatches() - before).toBe(4);
    // What /metrics shows as poller_watched_directories{source="scope"}.
    expect(watchStates().get('scope')).toEqual({ dirs: 4, fallback: false });
    // Still a working watch: a file dropped into a recent directory is reported.
    await fs.writeFile(path.join(root, 'new', 'a', 'later.bufr'), 'y');
    await waitFor(() => seen.includes('new/a/later.bufr'), { timeoutMs: 5_000, what: 'event for new/a/later.bufr' });
  });

  it('with date directories, watches only the start directories of the window', async () => {
    await makeDirs(['2026/12/05', '2026/12/06'], 30, true);
    await makeDirs(['2026/12/07/00', '2026/12/07/01'], 30, false);
    const before = inotifyWatches();
    await source.watch!(() => undefined, {
      signal: stop.signal,
      scope: () => ({ startDirs: ['2026/12/07', '2026/12/08'], maxAgeMs: 3_600_000 }),
    });
    // 2026/12/07 and its two hours; 2026/12/08 does not exist yet: waited for on 2026/12.
    expect(inotifyWatches() - before).toBe(4);
  });

  it('lets directories go as the window moves past them, and takes new ones', async () => {
    await makeDirs(['m1', 'm2'], 5, false);
    let nowMs = Date.now();
    const log = collectingLogger();
    const w = await startDirWatcher({
      root,
      sourceName: 'scope',
      log: log.log,
      onChange: () => undefined,
      scope: () => ({ maxAgeMs: 120_000 }),
      nowMs: () => nowMs,
    });
    try {
      expect(w.watched()).toEqual(['', 'm1', 'm2']);
      // Ten minutes later m1 and m2 are past maxAge (their mtimes stay); m3 is new.
      nowMs += 10 * 60_000;
      await makeDirs(['m3'], 5, false);
      const m3 = new Date(nowMs);
      await fs.utimes(path.join(root, 'm3'), m3, m3);
      await w.resync();
      expect(w.watched()).toEqual(['', 'm3']);
    } finally {
      w.close();
    }
  });
});

describe('walking a large tree holds only the files of the window', () => {
  it('files the filter does not keep (past maxAge) are not held by the walk', async () => {
    await makeDirs(
      Array.from({ length: 10 }, (_, i) => `old/d${i}`),
      50,
      true,
    );
    await makeDirs(['new'], 7, false);
    const cutoff = Date.now() - 3_600_000;
    const walk = await walkSource(
      source,
      { matches: () => true, shouldDescend: () => true, keeps: (e) => e.mtimeMs >= cutoff },
      { signal: stop.signal, concurrency: 2 },
    );
    expect(walk.files.map((f) => f.path).sort()).toEqual(Array.from({ length: 7 }, (_, i) => `new/f${i}.bufr`).sort());
  });
});
