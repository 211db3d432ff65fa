/**
 * Gathers one status document from the ledger: three reads (per-source status, the chart's one
 * aggregate, the latest failures) plus what the daemon holds in memory (paused sources).
 */
import type { ProductStatus } from '../lateness/tracker.js';
import type { FileRecord, Ledger } from '../ledger/ledger.js';
import {
  buildStatusReport,
  CHART_SLOT_MS,
  CHART_SLOTS,
  type FailureView,
  MAX_FAILURES,
  type StatusReport,
  type StatusSourceConfig,
} from './report.js';

export interface CollectStatusInput {
  ledger: Pick<Ledger, 'status' | 'activity' | 'files' | 'pluginRuns' | 'connection'>;
  sources: readonly StatusSourceConfig[];
  paused: ReadonlyMap<string, string>;
  nowMs: number;
  startedAtMs: number;
  /** Lateness per product (the daemon's tracker); absent: no product rows. */
  products?: readonly ProductStatus[];
}

export async function collectStatus(input: CollectStatusInput): Promise<StatusReport> {
  const { ledger, nowMs } = input;
  const [rows, activity, failed, quarantined, goneFiles] = await Promise.all([
    ledger.status(),
    ledger.activity(nowMs, CHART_SLOT_MS, CHART_SLOTS),
    ledger.files({ state: 'failed', limit: MAX_FAILURES }),
    ledger.files({ state: 'quarantined', limit: MAX_FAILURES }),
    ledger.files({ state: 'gone', limit: MAX_FAILURES }),
  ]);
  const gone = goneFiles.map((f) => ({ source: f.source, path: f.path, goneMs: f.goneMs ?? f.updatedMs }));
  const files = [...failed, ...quarantined];
  const runs = await ledger.pluginRuns(files.map((f) => f.id));
  const failures = files.map((f) => failureView(f, runs.get(f.id) ?? []));
  return buildStatusReport({
    nowMs,
    startedAtMs: input.startedAtMs,
    sources: input.sources,
    ledger: rows,
    paused: input.paused,
    activity,
    failures,
    gone,
    ...(input.products && { products: input.products }),
    ...(ledger.connection && { connection: ledger.connection() }),
  });
}

function failureView(
  f: FileRecord,
  runs: ReadonlyArray<{
    plugin: string;
    state: string;
    attempts: number;
    errorCode: string | null;
    lastError: string | null;
    nextRetryMs: number | null;
  }>,
): FailureView {
  const run = f.stage === 'process' ? runs.find((r) => r.state === 'failed' || r.state === 'quarantined') : undefined;
  const state = f.state === 'quarantined' ? 'quarantined' : 'failed';
  return {
    source: f.source,
    path: f.path,
    state,
    stage: f.stage,
    plugin: run?.plugin ?? null,
    errorCode: run?.errorCode ?? f.errorCode,
    message: run?.lastError ?? f.lastError,
    attempts: run?.attempts ?? f.fetchAttempts,
    nextRetryMs: state === 'quarantined' ? null : (run?.nextRetryMs ?? f.nextRetryMs),
    updatedMs: f.updatedMs,
  };
}
