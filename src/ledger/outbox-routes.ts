/**
 * Which sinks want which transitions, shared by the ledger backends: set once at start (and on
 * a config reload), asked once per transition, so `kind \0 source` → sinks is cached.
 */
import type {
  EventFact,
  EventKind,
  FileState,
  OutboxRoute,
  OutboxStats,
  PluginOutcome,
  VolumeEventKind,
  VolumeMemberFact,
} from './ledger.js';
import type { FileRow, RunRow } from './rows.js';

export class OutboxRouter {
  #routes: readonly OutboxRoute[] = [];
  readonly #sinksFor = new Map<string, readonly string[]>();

  set(routes: readonly OutboxRoute[]): void {
    this.#routes = routes;
    this.#sinksFor.clear();
  }

  get routes(): readonly OutboxRoute[] {
    return this.#routes;
  }

  /** No routes: no event is written at all. */
  get enabled(): boolean {
    return this.#routes.length > 0;
  }

  /** Backlog per sink: the sinks with pending rows, and every routed sink (at zero). */
  stats(pending: readonly { sink: string; pending: number; oldest: number | null }[]): OutboxStats[] {
    const out = new Map<string, OutboxStats>();
    for (const r of this.#routes) out.set(r.sink, { sink: r.sink, pending: 0, oldestPendingMs: null });
    for (const r of pending) out.set(r.sink, { sink: r.sink, pending: r.pending, oldestPendingMs: r.oldest });
    return [...out.values()].sort((a, b) => a.sink.localeCompare(b.sink));
  }

  /** The sinks that want `kind` events of `source`. */
  sinks(kind: EventKind, source: string): readonly string[] {
    const key = `${kind}\0${source}`;
    let sinks = this.#sinksFor.get(key);
    if (!sinks) {
      sinks = this.#routes
        .filter((r) => r.kinds.includes(kind) && (r.sources === null || r.sources.includes(source)))
        .map((r) => r.sink);
      this.#sinksFor.set(key, sinks);
    }
    return sinks;
  }
}

/** The events of one file's processing outcome: each output, then processed / failed / quarantined. */
export function processingEvents(
  row: FileRow,
  state: FileState,
  outcomes: readonly PluginOutcome[],
  runs: readonly Pick<RunRow, 'attempts'>[],
): Array<{ kind: EventKind; extra: Partial<EventFact> }> {
  const out: Array<{ kind: EventKind; extra: Partial<EventFact> }> = [];
  const outputs = outcomes.filter((o) => o.ok).flatMap((o) => o.outputs);
  for (const output of outputs) out.push({ kind: 'output', extra: { localPath: row.local_path, output } });
  if (state === 'processed') {
    out.push({ kind: 'processed', extra: { localPath: row.local_path, outputs } });
  } else if (state === 'failed' || state === 'quarantined') {
    const attempts = Math.max(0, ...runs.map((r) => r.attempts));
    out.push({
      kind: state,
      extra: {
        stage: 'process',
        errorCode: row.error_code,
        message: row.last_error,
        attempts,
        localPath: row.local_path,
      },
    });
  }
  return out;
}

/** What a volume event records of its volume version: key, fields, completeness and members. */
export function volumeFact(
  v: {
    id: number;
    key: string;
    version: number;
    fields: Readonly<Record<string, string>>;
    partial: boolean;
    firstMemberMs: number;
    lastMemberMs: number;
  },
  members: readonly VolumeMemberFact[],
): EventFact {
  return {
    path: v.key,
    sizeBytes: members.reduce((n, m) => n + m.sizeBytes, 0),
    mtimeMs: Math.max(0, ...members.map((m) => m.mtimeMs)),
    volume: {
      id: v.id,
      key: v.key,
      version: v.version,
      fields: v.fields,
      partial: v.partial,
      firstMemberMs: v.firstMemberMs,
      lastMemberMs: v.lastMemberMs,
      members,
    },
  };
}

/** The events of one volume version's plugin outcome: each output, then processed / failed / quarantined. */
export function volumeOutcomeEvents(
  base: EventFact,
  state: string,
  outcomes: readonly PluginOutcome[],
  runs: ReadonlyArray<{
    plugin: string;
    state: string;
    attempts: number;
    error_code: string | null;
    last_error: string | null;
  }>,
): Array<{ kind: VolumeEventKind; fact: EventFact }> {
  const out: Array<{ kind: VolumeEventKind; fact: EventFact }> = [];
  const outputs = outcomes.filter((o) => o.ok).flatMap((o) => o.outputs);
  for (const output of outputs) out.push({ kind: 'volume-output', fact: { ...base, output } });
  if (state === 'processed') {
    out.push({ kind: 'volume-processed', fact: { ...base, outputs } });
  } else if (state === 'failed' || state === 'quarantined') {
    const bad = runs.find((r) => r.state === state);
    out.push({
      kind: state === 'failed' ? 'volume-failed' : 'volume-quarantined',
      fact: {
        ...base,
        stage: 'process',
        errorCode: bad?.error_code ?? null,
        message: bad?.last_error ?? null,
        attempts: Math.max(0, ...runs.map((r) => r.attempts)),
        ...(bad && { plugin: bad.plugin }),
      },
    });
  }
  return out;
}
