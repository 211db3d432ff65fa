/**
 * The document behind `GET /api/status` and the status page: a pure function of what the ledger
 * and the running daemon know, so it is tested without a server or a clock. Nothing in it comes
 * from a secret: URLs are the credential-free display form, messages are ledger messages (which
 * never carry credentials).
 */
import type { ProductState, ProductStatus } from '../lateness/tracker.js';
import type { LedgerConnectionStatus } from '../ledger/ledger.js';
import { type Freshness, freshness, isLate } from './freshness.js';

/** The chart's slot: files per 5 minutes. */
export const CHART_SLOT_MS = 5 * 60_000;
/** 24 h of slots. */
export const CHART_SLOTS = 288;
/** Slots in "the last hour". */
const HOUR_SLOTS = 60 / 5;
/** Failures and quarantines listed at most; the rest are in `poller files --state failed`. */
export const MAX_FAILURES = 20;

/** Bumped on an incompatible change of the document. */
export const STATUS_VERSION = 1;

export type SourceState = 'ok' | 'late' | 'paused' | 'failing';

export interface SourceStatusView {
  name: string;
  /** The source URL without user name or password. */
  url: string | null;
  enabled: boolean;
  /** Not in the config any more, but still in the ledger. */
  configured: boolean;
  state: SourceState;
  /** Why the source is paused (disabled, or the error that paused it); null otherwise. */
  pausedReason: string | null;
  lastPollMs: number | null;
  lastSuccessMs: number | null;
  /** The error of the last poll, if it failed; null after a successful one. */
  lastError: string | null;
  /** The source's `expectEvery`; null when it has none. */
  expectEveryMs: number | null;
  /** Remote mtime of the newest file fetched. */
  newestFileMtimeMs: number | null;
  newestFileAgeMs: number | null;
  freshness: Freshness;
  /** File versions in the ledger per state (states with none left out). */
  files: Record<string, number>;
  /** One row per product of the source's `expect:` rules (empty without them). */
  products: ProductView[];
  lastHour: { files: number; bytes: number };
  /** Files fetched per slot, oldest first; the last slot ends at `generatedAtMs`. */
  chart: { slotMs: number; files: number[] };
}

/** A product (a radar, a bulletin) of a source against its `expect:` rule. */
export interface ProductView {
  product: string;
  state: ProductState;
  everyMs: number;
  graceMs: number;
  newestFileMtimeMs: number | null;
  newestFileAgeMs: number | null;
  /** When the newest file landed; lateness counts from here. */
  arrivedMs: number | null;
}

export interface FailureView {
  source: string;
  path: string;
  state: 'failed' | 'quarantined';
  /** Where it failed: the fetch, or a plugin. */
  stage: 'fetch' | 'process' | null;
  /** The plugin that failed (the first, when several did); null for a fetch failure. */
  plugin: string | null;
  errorCode: string | null;
  message: string | null;
  attempts: number;
  /** When it is tried again; null when quarantined (it waits for `poller retry`). */
  nextRetryMs: number | null;
  updatedMs: number;
}

/** A file version removed upstream (state `gone`). */
export interface GoneView {
  source: string;
  path: string;
  /** When it was found missing from the complete listings. */
  goneMs: number;
}

export interface StatusReport {
  version: number;
  generatedAtMs: number;
  startedAtMs: number;
  sources: SourceStatusView[];
  /** Newest first. */
  failures: FailureView[];
  /** Files removed upstream, newest first (the latest few). */
  gone?: GoneView[];
  /** A networked ledger's connection: the host in use, and its last failover. */
  ledger?: LedgerConnectionView;
}

/** The host a PostgreSQL ledger writes to, and when it last moved to another (failover). */
export interface LedgerConnectionView {
  host: string;
  switching: boolean;
  switches: number;
  lastSwitch: { atMs: number; from: string; to: string; reason: string } | null;
}

export interface StatusSourceConfig {
  readonly name: string;
  readonly displayUrl: string;
  readonly enabled: boolean;
  readonly expectEveryMs?: number | undefined;
}

export interface StatusLedgerSource {
  readonly name: string;
  readonly displayUrl: string | null;
  readonly lastPollMs: number | null;
  readonly lastSuccessMs: number | null;
  readonly lastError: string | null;
  readonly counts: Readonly<Partial<Record<string, number>>>;
  readonly newestFetchedMtimeMs: number | null;
}

export interface StatusInput {
  nowMs: number;
  startedAtMs: number;
  sources: readonly StatusSourceConfig[];
  ledger: readonly StatusLedgerSource[];
  /** Sources the daemon holds paused after a source-level error, with that error. */
  paused: ReadonlyMap<string, string>;
  /** From `ledger.activity(nowMs, CHART_SLOT_MS, CHART_SLOTS)`. */
  activity: ReadonlyArray<{ source: string; slot: number; files: number; bytes: number }>;
  failures: readonly FailureView[];
  gone?: readonly GoneView[];
  /** Lateness per product, from the daemon's tracker; absent: no product rows. */
  products?: readonly ProductStatus[];
  connection?: LedgerConnectionStatus;
}

/** State of one source: paused beats failing beats late. */
export function sourceState(
  s: { enabled: boolean; pausedReason: string | null; lastError: string | null },
  f: Freshness,
): SourceState {
  if (!s.enabled || s.pausedReason !== null) return 'paused';
  if (s.lastError !== null) return 'failing';
  return isLate(f) ? 'late' : 'ok';
}

export function buildStatusReport(input: StatusInput): StatusReport {
  const byName = new Map(input.ledger.map((r) => [r.name, r]));
  const configured = new Map(input.sources.map((s) => [s.name, s]));
  const names = [
    ...input.sources.map((s) => s.name),
    ...input.ledger.map((r) => r.name).filter((n) => !configured.has(n)),
  ];
  const sources = names.map((name): SourceStatusView => {
    const cfg = configured.get(name);
    const row = byName.get(name);
    const chart = new Array<number>(CHART_SLOTS).fill(0);
    const lastHour = { files: 0, bytes: 0 };
    for (const a of input.activity) {
      if (a.source !== name || a.slot < 0 || a.slot >= CHART_SLOTS) continue;
      chart[CHART_SLOTS - 1 - a.slot] = a.files;
      if (a.slot < HOUR_SLOTS) {
        lastHour.files += a.files;
        lastHour.bytes += a.bytes;
      }
    }
    const enabled = cfg?.enabled ?? false;
    const pausedReason = !cfg
      ? 'not in the config'
      : !cfg.enabled
        ? 'disabled in the config'
        : (input.paused.get(name) ?? null);
    const newest = row?.newestFetchedMtimeMs ?? null;
    const f = freshness({
      expectEveryMs: cfg?.expectEveryMs,
      newestMtimeMs: newest,
      nowMs: input.nowMs,
      startedAtMs: input.startedAtMs,
    });
    const lastError = row?.lastError ?? null;
    const products = (input.products ?? [])
      .filter((p) => p.source === name)
      .map(
        (p): ProductView => ({
          product: p.product,
          state: p.state,
          everyMs: p.everyMs,
          graceMs: p.graceMs,
          newestFileMtimeMs: p.newestMtimeMs,
          arrivedMs: p.arrivedMs,
          newestFileAgeMs: p.newestMtimeMs === null ? null : Math.max(0, input.nowMs - p.newestMtimeMs),
        }),
      );
    const files: Record<string, number> = {};
    for (const [state, n] of Object.entries(row?.counts ?? {})) if (n) files[state] = n;
    return {
      name,
      url: cfg?.displayUrl ?? row?.displayUrl ?? null,
      enabled,
      configured: cfg !== undefined,
      state: sourceState({ enabled, pausedReason, lastError }, f),
      pausedReason,
      lastPollMs: row?.lastPollMs ?? null,
      lastSuccessMs: row?.lastSuccessMs ?? null,
      lastError,
      expectEveryMs: cfg?.expectEveryMs ?? null,
      newestFileMtimeMs: newest,
      newestFileAgeMs: newest === null ? null : Math.max(0, input.nowMs - newest),
      freshness: f,
      files,
      products,
      lastHour,
      chart: { slotMs: CHART_SLOT_MS, files: chart },
    };
  });
  const failures = [...input.failures].sort((a, b) => b.updatedMs - a.updatedMs).slice(0, MAX_FAILURES);
  const gone = [...(input.gone ?? [])].sort((a, b) => b.goneMs - a.goneMs).slice(0, MAX_FAILURES);
  return {
    version: STATUS_VERSION,
    generatedAtMs: input.nowMs,
    startedAtMs: input.startedAtMs,
    sources,
    failures,
    ...(gone.length > 0 && { gone }),
    ...(input.connection && {
      ledger: {
        host: input.connection.host,
        switching: input.connection.switching,
        switches: input.connection.switches,
        lastSwitch: input.connection.lastSwitch ? { ...input.connection.lastSwitch } : null,
      },
    }),
  };
}
