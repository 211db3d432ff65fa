/**
 * What every ledger backend shares: the row shapes (one column set in SQLite and PostgreSQL),
 * their mapping to records, and the pure decisions of the transitions (what a sighting of a
 * listed entry does to the latest row of its path; which state a file ends in after its plugins
 * ran). Backends only run the SQL.
 */
import type { EmittedOutput } from '../plugins/api.js';
import type { MtimePrecision, RemoteEntry } from '../sources/source.js';
import type {
  FailedStage,
  FileRecord,
  FileState,
  Observation,
  PluginOutcome,
  PluginRunRecord,
  SourceStatus,
} from './ledger.js';
import { isSameVersion } from './version.js';

export interface FileRow {
  id: number;
  source: string;
  path: string;
  size_bytes: number;
  mtime_ms: number;
  mtime_precision: MtimePrecision;
  state: FileState;
  stage: FailedStage | null;
  sightings: number;
  first_seen_ms: number;
  last_seen_ms: number;
  fetch_attempts: number;
  next_retry_ms: number | null;
  error_code: string | null;
  last_error: string | null;
  local_path: string | null;
  fetched_ms: number | null;
  done_ms: number | null;
  claimed_by: string | null;
  lease_until_ms: number | null;
  updated_ms: number;
  /** Strong ETag of the version (HTTP, S3), '' when none. */
  etag: string;
}

export interface RunRow {
  file_id: number;
  plugin: string;
  state: PluginRunRecord['state'];
  attempts: number;
  error_code: string | null;
  last_error: string | null;
  duration_ms: number | null;
  next_retry_ms: number | null;
  /** JSON text in SQLite; PostgreSQL's jsonb arrives parsed. */
  outputs: string | EmittedOutput[];
  updated_ms: number;
}

/** The columns of the latest row of a path that a sighting needs. */
export interface LatestRow {
  id: number;
  size_bytes: number;
  mtime_ms: number;
  mtime_precision: MtimePrecision;
  state: FileState;
  stage: FailedStage | null;
  sightings: number;
  next_retry_ms: number | null;
  /** '' when none. */
  etag: string;
}

/** Recorded against a plugin run that was in progress when its poller died (kill -9, crash, out of memory). */
export const CRASHED_RUN_MESSAGE =
  'the poller stopped during this run (killed, crashed or out of memory); counted as an attempt';

export const SUPERSEDED_MESSAGE =
  'a newer version landed on its path before its plugins ran; the newer version is processed instead';

/**
 * An unchanged sighting of a row in these states asks nothing of the ledger: it is fetched (plugin
 * retries are driven by due times, not by listings), finished, or refused. Only 'seen' rows
 * (settling) and fetch failures (retried when listed) need each sighting.
 */
const QUIET_STATES: ReadonlySet<FileState> = new Set([
  'fetched',
  'processing',
  'processed',
  'quarantined',
  'rejected',
  'superseded',
]);

export function isQuiet(state: FileState, stage: FailedStage | null): boolean {
  return QUIET_STATES.has(state) || (state === 'failed' && stage === 'process');
}

/** The key of a version in the quiet-version caches. */
export function quietKey(entry: RemoteEntry): string {
  return `${entry.sizeBytes}:${entry.mtimeMs}:${entry.mtimePrecision}:${entry.etag ?? ''}`;
}

/** The directory of a remote path ('' for the root). */
export function dirOf(p: string): string {
  const slash = p.lastIndexOf('/');
  return slash < 0 ? '' : p.slice(0, slash);
}

/** Observations grouped by their directory ('' for the root). */
export function groupByDir(observations: readonly Observation[]): Map<string, Observation[]> {
  const groups = new Map<string, Observation[]>();
  for (const o of observations) {
    const dir = dirOf(o.entry.path);
    let g = groups.get(dir);
    if (!g) {
      g = [];
      groups.set(dir, g);
    }
    g.push(o);
  }
  return groups;
}

/**
 * An order-independent digest of a listing: two 32-bit FNV-1a hashes of each entry's path, size,
 * mtime and precision, summed, with the count. Any change of any entry changes it (barring a
 * 64-bit coincidence); the server's order does not.
 */
export function listingDigest(observations: readonly Observation[]): string {
  let a = 0;
  let b = 0;
  for (const { entry } of observations) {
    const text = `${entry.path}\n${entry.sizeBytes}\n${entry.mtimeMs}\n${entry.mtimePrecision}\n${entry.etag ?? ''}`;
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193 ^ 0x5bd1e995;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
    }
    a = (a + (h1 >>> 0)) >>> 0;
    b = (b + (h2 >>> 0)) >>> 0;
  }
  return `${observations.length}:${a.toString(16)}:${b.toString(16)}`;
}

export function toRecord(r: FileRow): FileRecord {
  return {
    id: r.id,
    source: r.source,
    path: r.path,
    sizeBytes: r.size_bytes,
    mtimeMs: r.mtime_ms,
    mtimePrecision: r.mtime_precision,
    state: r.state,
    stage: r.stage,
    sightings: r.sightings,
    firstSeenMs: r.first_seen_ms,
    lastSeenMs: r.last_seen_ms,
    fetchAttempts: r.fetch_attempts,
    nextRetryMs: r.next_retry_ms,
    errorCode: r.error_code,
    lastError: r.last_error,
    localPath: r.local_path,
    fetchedMs: r.fetched_ms,
    doneMs: r.done_ms,
    claimedBy: r.claimed_by,
    leaseUntilMs: r.lease_until_ms,
    updatedMs: r.updated_ms,
    ...(r.etag && { etag: r.etag }),
  };
}

export function toRun(r: RunRow): PluginRunRecord {
  let outputs: EmittedOutput[] = [];
  if (Array.isArray(r.outputs)) outputs = r.outputs;
  else {
    try {
      outputs = JSON.parse(r.outputs) as EmittedOutput[];
    } catch {
      outputs = [];
    }
  }
  return {
    fileId: r.file_id,
    plugin: r.plugin,
    state: r.state,
    attempts: r.attempts,
    errorCode: r.error_code,
    lastError: r.last_error,
    durationMs: r.duration_ms,
    nextRetryMs: r.next_retry_ms,
    outputs,
    updatedMs: r.updated_ms,
  };
}

/** Error text stored in the ledger: one line, bounded. */
export function clip(text: string): string {
  const line = text.replace(/\s*\n\s*/g, ' ');
  return line.length > 1000 ? `${line.slice(0, 997)}...` : line;
}

/**
 * What one sighting of a listed entry does, given the latest row of its path:
 * - `insert-rejected`: an unusable name seen for the first time; `rejected`: seen before.
 * - `insert`: a new file (`isNew`) or a new version of one taken further than 'seen'.
 * - `regrow`: still settling and it moved (a growing upload): sightings start again.
 * - `sighted`: settling and unchanged: one more sighting.
 * - `unchanged`: nothing to write; `due` when it is a failed fetch whose retry time has come.
 */
export type Sighting =
  | { readonly kind: 'insert-rejected' }
  | { readonly kind: 'rejected' }
  | { readonly kind: 'insert'; readonly isNew: boolean }
  | { readonly kind: 'regrow' }
  | { readonly kind: 'sighted' }
  | { readonly kind: 'unchanged'; readonly quiet: boolean; readonly due: boolean };

export function classifySighting(o: Observation, row: LatestRow | undefined, nowMs: number): Sighting {
  const { entry } = o;
  if (o.rejectReason !== undefined) return row ? { kind: 'rejected' } : { kind: 'insert-rejected' };
  if (row === undefined) return { kind: 'insert', isNew: true };
  const same = isSameVersion(
    { sizeBytes: row.size_bytes, mtimeMs: row.mtime_ms, mtimePrecision: row.mtime_precision, etag: row.etag },
    entry,
  );
  if (!same) return row.state === 'seen' ? { kind: 'regrow' } : { kind: 'insert', isNew: false };
  if (row.state === 'seen') return { kind: 'sighted' };
  return {
    kind: 'unchanged',
    quiet: isQuiet(row.state, row.stage),
    due: row.state === 'failed' && row.stage === 'fetch' && row.next_retry_ms !== null && row.next_retry_ms <= nowMs,
  };
}

/** Whether a version is ready to fetch: old enough, and stable or old enough at first sight. */
export function readiness(opts: {
  nowMs: number;
  minAgeMs: number;
  stableListings: number;
  oldEnoughMs: number;
}): (mtimeMs: number, sightings: number) => boolean {
  return (mtimeMs, sightings) => {
    const ageMs = opts.nowMs - mtimeMs;
    if (ageMs < opts.minAgeMs) return false;
    return sightings >= opts.stableListings || ageMs >= opts.oldEnoughMs;
  };
}

/** The values a plugin run's end writes (the same columns in every backend). */
export function runEndValues(o: PluginOutcome, nowMs: number) {
  return {
    state: (o.ok ? 'succeeded' : o.quarantine ? 'quarantined' : 'failed') as PluginRunRecord['state'],
    code: o.ok ? null : (o.errorCode ?? 'POLLER_PLUGIN_FAILED'),
    error: o.ok ? null : clip(o.message ?? 'failed'),
    duration: Math.round(o.durationMs),
    retry: o.ok || o.quarantine ? null : (o.nextRetryMs ?? nowMs),
    outputs: JSON.stringify(o.outputs),
    uncounted: o.notCounted ? 1 : 0,
  };
}

export interface ProcessingVerdict {
  readonly state: FileState;
  readonly stage: FailedStage | null;
  readonly code: string | null;
  readonly error: string | null;
  readonly retry: number | null;
  readonly done: number | null;
}

/**
 * A file's state after a processing pass, from this pass's outcomes and all its runs (as they
 * stand after this pass was written): processed only when every matching plugin succeeded.
 */
export function processingVerdict(
  outcomes: readonly PluginOutcome[],
  runs: readonly Pick<RunRow, 'plugin' | 'state' | 'error_code' | 'last_error' | 'next_retry_ms'>[],
  nowMs: number,
): ProcessingVerdict {
  let retry: number | null = null;
  let firstError: PluginOutcome | undefined;
  let anyRetryable = false;
  for (const o of outcomes) {
    if (o.ok) continue;
    firstError ??= o;
    if (!o.quarantine) {
      anyRetryable = true;
      const at = o.nextRetryMs ?? nowMs;
      retry = retry === null ? at : Math.min(retry, at);
    }
  }
  const failedRuns = runs.filter((r) => r.state === 'failed');
  const quarantinedRuns = runs.filter((r) => r.state === 'quarantined');
  let state: FileState;
  if (failedRuns.length === 0 && quarantinedRuns.length === 0) state = 'processed';
  else if (anyRetryable || failedRuns.length > 0) state = 'failed';
  else state = 'quarantined';
  if (state === 'failed' && retry === null) retry = Math.min(...failedRuns.map((r) => r.next_retry_ms ?? nowMs));
  const errRun = failedRuns[0] ?? quarantinedRuns[0];
  const processed = state === 'processed';
  return {
    state,
    stage: processed ? null : 'process',
    code: processed ? null : (firstError?.errorCode ?? errRun?.error_code ?? null),
    error: processed
      ? null
      : clip(
          firstError
            ? `${firstError.plugin}: ${firstError.message ?? 'failed'}`
            : `${errRun?.plugin}: ${errRun?.last_error ?? 'failed'}`,
        ),
    retry: state === 'failed' ? retry : null,
    done: state === 'failed' ? null : nowMs,
  };
}

export interface SourceRow {
  name: string;
  display_url: string | null;
  last_poll_ms: number | null;
  last_success_ms: number | null;
  last_error: string | null;
}

/** `status()` from its three queries: sources, counts by state, newest fetched mtime. */
export function sourceStatuses(
  sources: readonly SourceRow[],
  counts: readonly { source: string; state: FileState; n: number }[],
  newest: readonly { source: string; m: number | null }[],
): SourceStatus[] {
  return sources.map((s) => ({
    name: s.name,
    displayUrl: s.display_url,
    lastPollMs: s.last_poll_ms,
    lastSuccessMs: s.last_success_ms,
    lastError: s.last_error,
    counts: Object.fromEntries(counts.filter((c) => c.source === s.name).map((c) => [c.state, c.n])),
    newestFetchedMtimeMs: newest.find((n) => n.source === s.name)?.m ?? null,
  }));
}
