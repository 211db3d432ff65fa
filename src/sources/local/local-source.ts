/**
 * A local directory as a source (`file:///path`; `rootPath` is the directory). The operations
 * live beside it: listing (local-list.ts), downloading (local-download.ts), change notifications
 * (dir-watcher.ts: one watch per directory of the source's window; they only trigger an early
 * poll, the engine's periodic rescan remains the backstop), paths and errors (local-context.ts).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { TransientError } from '../../errors.js';
import type {
  DownloadOptions,
  ListOptions,
  RemoteEntry,
  Source,
  SourceConnectOptions,
  WatchOptions,
} from '../source.js';
import { type DirWatcher, startDirWatcher } from './dir-watcher.js';
import { classifyLocal, type LocalContext, localPathOf, normaliseRel } from './local-context.js';
import { downloadLocalFile } from './local-download.js';
import { listLocalDir, statLocal } from './local-list.js';

export function createLocalSource(opts: SourceConnectOptions): Source {
  const ctx: LocalContext = { root: path.resolve(opts.rootPath), name: opts.name, log: opts.log };
  const watchers = new Set<DirWatcher>();
  let closed = false;

  /** Every operation starts here: the source open, the signal not aborted, the path inside the root. */
  function begin(relPath: string, signal: AbortSignal): { rel: string; full: string } {
    if (closed) throw new TransientError('POLLER_LOCAL_CLOSED', `local source "${opts.name}": source is closed`);
    signal.throwIfAborted();
    const rel = normaliseRel(relPath);
    return { rel, full: localPathOf(ctx, rel) };
  }

  async function remove(relPath: string, { signal }: ListOptions): Promise<void> {
    const { rel, full } = begin(relPath, signal);
    await fs.unlink(full).catch((err: unknown) => {
      throw classifyLocal(ctx, err, rel);
    });
  }

  async function rename(from: string, to: string, { signal }: ListOptions): Promise<void> {
    const src = begin(from, signal);
    const dst = localPathOf(ctx, normaliseRel(to));
    try {
      await fs.mkdir(path.dirname(dst), { recursive: true });
      await fs.rename(src.full, dst);
    } catch (err) {
      throw classifyLocal(ctx, err, src.rel);
    }
  }

  async function watch(onChange: (relPath: string) => void, { signal, scope }: WatchOptions): Promise<void> {
    begin('', signal);
    // Stability is the engine's settle rule, applied to every source alike: events are hints only.
    const watcher = await startDirWatcher({ root: ctx.root, sourceName: opts.name, log: opts.log, onChange, scope });
    if (signal.aborted || closed) {
      watcher.close();
      return;
    }
    watchers.add(watcher);
    signal.addEventListener(
      'abort',
      () => {
        watchers.delete(watcher);
        watcher.close();
      },
      { once: true },
    );
  }

  return {
    displayUrl: pathToFileURL(ctx.root).href,
    list: async (dir: string, { signal }: ListOptions) => {
      const { rel, full } = begin(dir, signal);
      return listLocalDir(ctx, full, rel, signal);
    },
    download: async (relPath: string, to: Writable, dl: DownloadOptions) => {
      const { rel, full } = begin(relPath, dl.signal);
      await downloadLocalFile(ctx, full, rel, to, dl);
    },
    stat: async (relPath: string, { signal }: ListOptions): Promise<RemoteEntry | undefined> => {
      const { rel, full } = begin(relPath, signal);
      return statLocal(ctx, full, rel);
    },
    remove,
    rename,
    watch,
    close: async () => {
      closed = true;
      for (const w of watchers) w.close();
      watchers.clear();
    },
  };
}
