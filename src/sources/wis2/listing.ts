/**
 * The pending notifications of a WIS2 source as a listing: a tree of `data_id` paths, each file
 * versioned by its `pubtime` and sized by its link `length` (or a HEAD). A version the ledger has
 * finished with leaves the pending set (and the journal) here.
 */
import type { Logger } from 'pino';
import { errorCode } from '../../errors.js';
import type { ListOptions, RemoteEntry } from '../source.js';
import type { Journal } from './journal.js';
import type { DownloadOrigins } from './origins.js';
import type { Pending, Wis2State } from './state.js';

export interface ListingDeps {
  readonly state: Wis2State;
  readonly journal: Journal | undefined;
  readonly origins: DownloadOrigins;
  readonly log: Logger;
  readonly journalFile: string;
}

export function sizeOf(p: Pending): number | undefined {
  return p.entry.size ?? p.headSize;
}

function addTo(out: Map<string, RemoteEntry[]>, dir: string, entry: RemoteEntry): void {
  let list = out.get(dir);
  if (!list) {
    list = [];
    out.set(dir, list);
  }
  list.push(entry);
}

/** The file and the directories above it that are not in the tree yet. */
function addFile(out: Map<string, RemoteEntry[]>, dirs: Set<string>, p: string, pend: Pending): void {
  const parts = p.split('/');
  const name = parts[parts.length - 1] ?? p;
  const entry: RemoteEntry = {
    path: p,
    name,
    type: 'file',
    sizeBytes: sizeOf(pend) ?? 0,
    mtimeMs: pend.entry.mtimeMs,
    mtimePrecision: 'ms',
  };
  addTo(out, parts.slice(0, -1).join('/'), entry);
  for (let i = parts.length - 1; i > 0; i--) {
    const dir = parts.slice(0, i).join('/');
    if (dirs.has(dir)) break;
    dirs.add(dir);
    const d: RemoteEntry = {
      path: dir,
      name: parts[i - 1] as string,
      type: 'dir',
      sizeBytes: 0,
      mtimeMs: 0,
      mtimePrecision: 'ms',
    };
    addTo(out, parts.slice(0, i - 1).join('/'), d);
  }
}

/** A HEAD for the size of a notification without `length`; false when it failed (tried again next poll). */
async function headSize(deps: ListingDeps, p: string, pend: Pending, listOpts: ListOptions): Promise<boolean> {
  try {
    const { source, rel, query } = deps.origins.for(pend.entry.href);
    const st = await source.stat?.(rel, query === '' ? listOpts : { ...listOpts, urlQuery: query });
    if (st === undefined) throw new Error('404 not found');
    pend.headSize = st.sizeBytes;
    return true;
  } catch (err) {
    deps.log.warn(
      { event: 'wis2.head_failed', path: p, err: { code: errorCode(err), message: (err as Error).message } },
      `${p}: the notification gives no length and a HEAD of its link failed; tried again at the next poll`,
    );
    return false;
  }
}

export async function buildTree(deps: ListingDeps, listOpts: ListOptions): Promise<Map<string, RemoteEntry[]>> {
  const now = Date.now();
  const { state, journal, log, journalFile } = deps;
  state.expire(now);
  let done = 0;
  const out = new Map<string, RemoteEntry[]>();
  const dirs = new Set<string>();
  for (const [p, pend] of [...state.pending]) {
    listOpts.signal.throwIfAborted();
    const known = await listOpts.known?.(p);
    if (known?.done && known.mtimeMs === pend.entry.mtimeMs) {
      // Fetched (or given up) by the ledger: the notification has served.
      state.pending.delete(p);
      journal
        ?.append({ t: 'd', at: now, path: p, mtimeMs: pend.entry.mtimeMs })
        .catch((err: unknown) => log.warn({ event: 'wis2.journal_failed', err }, `cannot write to ${journalFile}`));
      done++;
      continue;
    }
    if (sizeOf(pend) === undefined && (listOpts.wanted?.(p) ?? true) && !(await headSize(deps, p, pend, listOpts)))
      continue;
    addFile(out, dirs, p, pend);
  }
  if (done > 0)
    journal
      ?.maybeCompact(now)
      .catch((err: unknown) => log.warn({ event: 'wis2.journal_failed', err }, `cannot compact ${journalFile}`));
  return out;
}
