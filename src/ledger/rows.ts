/**
 * What every ledger backend shares: the row shapes (one column set in SQLite and PostgreSQL) and
 * their mapping to records. The decisions of the transitions are the planners of `core/`.
 */
import type { EmittedOutput } from '../plugins/api.js';
import type { MtimePrecision, RemoteEntry } from '../sources/source.js';
import type {
  EventFact,
  EventKind,
  FailedStage,
  FileRecord,
  FileState,
  Observation,
  OutboxEvent,
  PluginRunRecord,
  SourceStatus,
} from './records.js';

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
  /** When the version was found removed upstream; null otherwise (absent in old rows). */
  gone_ms?: number | null;
  /** What recorded it gone when the upstream said so (`WIS2 notification <id>`); null when listings did. */
  gone_by?: string | null;
  /** PostgreSQL with a landing root per host: the instance holding the landed bytes. */
  landed_on?: string | null;
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

/** Recorded against a version whose landed bytes are a newer version's. */
export const SUPERSEDED_MESSAGE =
  'a newer version landed on its path before its plugins ran; the newer version is processed instead';

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
    ...(r.gone_ms != null && { goneMs: Number(r.gone_ms) }),
    ...(r.gone_by != null && { goneBy: r.gone_by }),
    ...(r.landed_on != null && { landedOn: r.landed_on }),
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

/** An outbox row (`fact` is JSON text in SQLite, parsed jsonb in PostgreSQL; `volume_id` only in SQLite). */
export interface EventRow {
  seq: number;
  id: string;
  sink: string;
  kind: EventKind;
  source: string;
  file_id: number;
  volume_id?: number | null;
  at_ms: number;
  fact: string | EventFact;
}

/** An outbox row as the dispatcher gets it. */
export function toOutboxEvent(r: EventRow): OutboxEvent {
  return {
    seq: r.seq,
    id: r.id,
    sink: r.sink,
    kind: r.kind,
    source: r.source,
    fileId: r.file_id,
    ...(r.volume_id !== undefined && { volumeId: r.volume_id }),
    atMs: r.at_ms,
    fact: typeof r.fact === 'string' ? (JSON.parse(r.fact) as EventFact) : r.fact,
  };
}
