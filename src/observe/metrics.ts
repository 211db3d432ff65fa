/**
 * Prometheus metrics on a registry of our own (never prom-client's global one, so tests and
 * several engines in one process do not share counters). Every name starts with `poller_`.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { registerMemoryGauges } from './memory.js';

/** Where a file failed: in the fetch, a plugin, or the remote action after the ledger commit. */
export type FailureStage = 'list' | 'fetch' | 'verify' | 'process' | 'after';

export type PluginOutcome = 'succeeded' | 'failed' | 'timed_out';

/** The typed face of the metrics registry; the engine and runner call these, nothing else. */
export interface Metrics {
  /** The prom-client registry behind the helpers, for an exporter that needs it. */
  readonly registry: Registry;
  /** A listing of `source` produced `n` entries after filtering. */
  filesListed(source: string, n: number): void;
  /** A file landed: its size, how long the download took, and its remote mtime. */
  fileFetched(source: string, bytes: number, durationMs: number, newestMtimeMs: number): void;
  fileFailed(source: string, stage: FailureStage): void;
  fileQuarantined(source: string): void;
  /** One plugin run finished; anything but `succeeded` also counts as a plugin failure. */
  pluginRun(plugin: string, outcome: PluginOutcome, durationMs: number): void;
  /** Runs of `plugin` executing now. */
  pluginInFlight(plugin: string, n: number): void;
  /** A run of `plugin` waited this long for a free worker (or concurrency slot). */
  pluginWaited(plugin: string, ms: number): void;
  /** A worker or child of `plugin` was lost and will be replaced. */
  pluginHostReplaced(plugin: string, reason: string): void;
  /** A poll cycle of `source` completed without a source-level error at `atMs`. */
  pollSucceeded(source: string, atMs: number): void;
  pollFailed(source: string): void;
  /** Whether `source` is late against its `expectEvery` (see `src/status/freshness.ts`), as of this scrape. */
  sourceLate(source: string, late: boolean): void;
  /** Whether `product` of `source` is late against its `expect:` rule (see `lateness.ts`), as of this scrape. */
  productLate(source: string, product: string, late: boolean): void;
  /** Connections of `source`'s pool currently lent out. */
  poolInUse(source: string, n: number): void;
  /** A listing looked cut short by a server cap (pure-ftpd stops at 2,000 entries silently). */
  listingTruncated(source: string): void;
  /** `n` listing lines of `source` matched no known format and were skipped (and logged). */
  listingLinesUnparsed(source: string, n: number): void;
  /** A sink's broker acknowledged `n` events. */
  eventsPublished(sink: string, n: number): void;
  /** A publish to a sink failed (the events stay in the outbox). */
  eventsFailed(sink: string): void;
  /** The outbox backlog of a sink as last seen: pending rows and when the oldest was written. */
  outboxBacklog(sink: string, pending: number, oldestPendingMs: number | null): void;
  /** The ledger's size at the last check (rows per table, bytes on disk). */
  ledgerSize(stats: { fileRows: number; pluginRunRows: number; bytes: number | null }): void;
  /** Rows deleted by retention. */
  ledgerPruned(files: number): void;
  /** Shared ledger: instances whose heartbeat is within the lease, as this poller sees them. */
  ledgerInstances(live: number): void;
  /** Radar volumes by source and state as last counted, and the stale collecting ones per source. */
  volumeCounts(
    counts: ReadonlyArray<{ source: string; state: string; count: number }>,
    stale: ReadonlyMap<string, number>,
  ): void;
  /** A volume became complete or partial, `waitMs` after its first member landed. */
  volumeClosed(source: string, state: 'complete' | 'partial', waitMs: number): void;
  /**
   * Start the per-source and per-plugin counters at 0, so a failure or quarantine rate exists
   * (as 0) before the first one happens: alerts on `increase()` and dashboards see every series.
   */
  declare(names: { sources: readonly string[]; plugins: readonly string[] }): void;
  /** The text exposition format, for `GET /metrics`. */
  render(): Promise<string>;
  /** The Content-Type header that goes with {@link Metrics.render}. */
  readonly contentType: string;
}

export interface CreateMetricsOptions {
  /** Clock for the age gauges; tests pass a fixed one. @default Date.now */
  nowMs?: () => number;
  /**
   * Also export Node process metrics (memory, CPU, event-loop lag, open fds) as `poller_process_*`
   * and `poller_nodejs_*`. Off by default because it installs a performance observer per registry.
   * @default false
   */
  processMetrics?: boolean;
  /**
   * An `instance` label on every series: several pollers on one shared ledger are told apart
   * even when one Prometheus job scrapes them all.
   */
  instance?: string;
}

// Transfers of radar volumes take from a few ms (local) to minutes (slow links).
const FETCH_BUCKETS_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
// Plugins range from a copy (ms) to a BUFR decode with a quicklook render (seconds).
const PLUGIN_BUCKETS_S = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

// A volume's members arrive over seconds to minutes; a partial one waits out its quiet time.
const VOLUME_BUCKETS_S = [1, 5, 10, 30, 60, 120, 180, 300, 600, 1200, 3600];

/**
 * Create the metrics for one engine.
 *
 * @example
 * const metrics = createMetrics();
 * metrics.fileFetched('radar-north', 48_213, 310, Date.parse('2026-11-23T05:15:00Z'));
 * const text = await metrics.render();
 */
export function createMetrics(options: CreateMetricsOptions = {}): Metrics {
  const nowMs = options.nowMs ?? Date.now;
  const registry = new Registry();
  if (options.instance !== undefined) registry.setDefaultLabels({ instance: options.instance });
  const registers = [registry];
  const { declareSource: declareListings, ...listings } = listingMetrics(registers);
  const { declareSource: declareFiles, ...files } = fileMetrics(registers, nowMs);
  const { declarePlugin, ...plugins } = pluginMetrics(registers);
  const { declareSource: declarePolls, ...polls } = pollMetrics(registers);
  const metrics: Metrics = {
    registry,
    contentType: registry.contentType,
    ...listings,
    ...files,
    ...plugins,
    ...polls,
    ...eventMetrics(registers, nowMs),
    ...ledgerMetrics(registers),
    ...volumeMetrics(registers),
    declare({ sources, plugins: names }) {
      for (const s of sources) {
        declareListings(s);
        declareFiles(s);
        declarePolls(s);
      }
      for (const p of names) declarePlugin(p);
    },
    render() {
      return registry.metrics();
    },
  };
  registerMemoryGauges(registers);
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry, prefix: 'poller_' });
  return metrics;
}

type Registers = Registry[];

/** Listings per source: entries seen, listings cut short, lines in no known format. */
function listingMetrics(registers: Registers): Pick<
  Metrics,
  'filesListed' | 'listingTruncated' | 'listingLinesUnparsed'
> & {
  declareSource(source: string): void;
} {
  const listed = new Counter({
    name: 'poller_files_listed_total',
    help: 'Remote files seen in listings, after filtering.',
    labelNames: ['source'] as const,
    registers,
  });
  const truncated = new Counter({
    name: 'poller_listing_truncated_total',
    help: 'Listings that looked cut short by a server cap.',
    labelNames: ['source'] as const,
    registers,
  });
  const unparsedLines = new Counter({
    name: 'poller_listing_lines_unparsed_total',
    help: 'Listing lines in no known format, skipped (the listing is then not complete).',
    labelNames: ['source'] as const,
    registers,
  });
  return {
    declareSource(source) {
      for (const c of [listed, truncated, unparsedLines]) c.inc({ source }, 0);
    },
    filesListed(source, n) {
      listed.inc({ source }, n);
    },
    listingTruncated(source) {
      truncated.inc({ source });
    },
    listingLinesUnparsed(source, n) {
      unparsedLines.inc({ source }, n);
    },
  };
}

/** Transfers, failures and quarantines per source, and the newest file's age. */
function fileMetrics(
  registers: Registers,
  nowMs: () => number,
): Pick<Metrics, 'fileFetched' | 'fileFailed' | 'fileQuarantined'> & { declareSource(source: string): void } {
  const fetched = new Counter({
    name: 'poller_files_fetched_total',
    help: 'Files downloaded and landed.',
    labelNames: ['source'] as const,
    registers,
  });
  const fetchedBytes = new Counter({
    name: 'poller_fetched_bytes_total',
    help: 'Bytes of landed files.',
    labelNames: ['source'] as const,
    registers,
  });
  const failed = new Counter({
    name: 'poller_files_failed_total',
    help: 'File failures by stage.',
    labelNames: ['source', 'stage'] as const,
    registers,
  });
  const quarantined = new Counter({
    name: 'poller_files_quarantined_total',
    help: 'Files that used up their attempts and were quarantined.',
    labelNames: ['source'] as const,
    registers,
  });
  const fetchDuration = new Histogram({
    name: 'poller_fetch_duration_seconds',
    help: 'Time to download and land one file.',
    labelNames: ['source'] as const,
    buckets: FETCH_BUCKETS_S,
    registers,
  });
  const newestMtimeMs = new Map<string, number>();
  new Gauge({
    name: 'poller_newest_file_age_seconds',
    help: 'Age at scrape time of the newest file fetched from each source (its remote mtime); alert when it grows.',
    labelNames: ['source'] as const,
    registers,
    collect() {
      const now = nowMs();
      for (const [source, mtimeMs] of newestMtimeMs) this.set({ source }, Math.max(0, now - mtimeMs) / 1000);
    },
  });
  return {
    declareSource(source) {
      for (const c of [fetched, fetchedBytes, quarantined]) c.inc({ source }, 0);
      for (const stage of ['fetch', 'process'] as const) failed.inc({ source, stage }, 0);
    },
    fileFetched(source, bytes, durationMs, mtimeMs) {
      fetched.inc({ source });
      fetchedBytes.inc({ source }, bytes);
      fetchDuration.observe({ source }, durationMs / 1000);
      // A backfill fetches old files after new ones: only a newer mtime moves the gauge.
      const previous = newestMtimeMs.get(source);
      if (previous === undefined || mtimeMs > previous) newestMtimeMs.set(source, mtimeMs);
    },
    fileFailed(source, stage) {
      failed.inc({ source, stage });
    },
    fileQuarantined(source) {
      quarantined.inc({ source });
    },
  };
}

/** Plugin runs: durations by outcome, failures, runs in flight, waits, lost workers. */
function pluginMetrics(registers: Registers): Pick<
  Metrics,
  'pluginRun' | 'pluginInFlight' | 'pluginWaited' | 'pluginHostReplaced'
> & {
  declarePlugin(plugin: string): void;
} {
  const duration = new Histogram({
    name: 'poller_plugin_duration_seconds',
    help: 'Time of one plugin run, by outcome.',
    labelNames: ['plugin', 'outcome'] as const,
    buckets: PLUGIN_BUCKETS_S,
    registers,
  });
  const failures = new Counter({
    name: 'poller_plugin_failures_total',
    help: 'Plugin runs that failed or timed out.',
    labelNames: ['plugin'] as const,
    registers,
  });
  const inFlight = new Gauge({
    name: 'poller_plugin_runs_in_flight',
    help: 'Plugin runs executing now.',
    labelNames: ['plugin'] as const,
    registers,
  });
  const wait = new Histogram({
    name: 'poller_plugin_wait_seconds',
    help: 'Time a plugin run waited for a free worker (or concurrency slot) before it started.',
    labelNames: ['plugin'] as const,
    buckets: PLUGIN_BUCKETS_S,
    registers,
  });
  const restarts = new Counter({
    name: 'poller_plugin_worker_restarts_total',
    help: 'Workers or child processes of a plugin lost (crash, out of memory, terminated at the timeout or shutdown) and replaced.',
    labelNames: ['plugin', 'reason'] as const,
    registers,
  });
  return {
    declarePlugin(plugin) {
      failures.inc({ plugin }, 0);
      inFlight.inc({ plugin }, 0);
    },
    pluginRun(plugin, outcome, durationMs) {
      duration.observe({ plugin, outcome }, durationMs / 1000);
      if (outcome !== 'succeeded') failures.inc({ plugin });
    },
    pluginInFlight(plugin, n) {
      inFlight.set({ plugin }, n);
    },
    pluginWaited(plugin, ms) {
      wait.observe({ plugin }, ms / 1000);
    },
    pluginHostReplaced(plugin, reason) {
      restarts.inc({ plugin, reason });
    },
  };
}

/** Poll outcomes, lateness (per source and per product) and the connection pools. */
function pollMetrics(registers: Registers): Pick<
  Metrics,
  'pollSucceeded' | 'pollFailed' | 'sourceLate' | 'productLate' | 'poolInUse'
> & {
  declareSource(source: string): void;
} {
  const pollFailures = new Counter({
    name: 'poller_poll_failures_total',
    help: 'Poll cycles that ended in a source-level error.',
    labelNames: ['source'] as const,
    registers,
  });
  const pool = new Gauge({
    name: 'poller_pool_connections_in_use',
    help: 'Connections of the source pool currently in use.',
    labelNames: ['source'] as const,
    registers,
  });
  const sourceLate = new Gauge({
    name: 'poller_source_late',
    help: 'Whether the newest file of a source is older than its expectEvery (1) or not (0); only sources with expectEvery.',
    labelNames: ['source'] as const,
    registers,
  });
  const productLate = new Gauge({
    name: 'poller_product_late',
    help: 'Whether a product of a source (a radar, a bulletin) is later than its expect: cadence plus grace (1) or not (0); only sources with expect.',
    labelNames: ['source', 'product'] as const,
    registers,
  });
  const lastSuccessMs = new Map<string, number>();
  new Gauge({
    name: 'poller_last_poll_success_timestamp_seconds',
    help: 'Unix time of the last successful poll of each source.',
    labelNames: ['source'] as const,
    registers,
    collect() {
      for (const [source, atMs] of lastSuccessMs) this.set({ source }, atMs / 1000);
    },
  });
  return {
    declareSource(source) {
      pollFailures.inc({ source }, 0);
    },
    pollSucceeded(source, atMs) {
      const previous = lastSuccessMs.get(source);
      if (previous === undefined || atMs > previous) lastSuccessMs.set(source, atMs);
    },
    pollFailed(source) {
      pollFailures.inc({ source });
    },
    sourceLate(source, late) {
      sourceLate.set({ source }, late ? 1 : 0);
    },
    productLate(source, product, late) {
      productLate.set({ source, product }, late ? 1 : 0);
    },
    poolInUse(source, n) {
      pool.set({ source }, n);
    },
  };
}

/** Event sinks: acknowledged and failed publishes, and the outbox backlog. */
function eventMetrics(
  registers: Registers,
  nowMs: () => number,
): Pick<Metrics, 'eventsPublished' | 'eventsFailed' | 'outboxBacklog'> {
  const published = new Counter({
    name: 'poller_events_published_total',
    help: 'Events acknowledged by the broker of each sink.',
    labelNames: ['sink'] as const,
    registers,
  });
  const failed = new Counter({
    name: 'poller_events_failed_total',
    help: 'Failed publish attempts per sink (the events stay in the outbox and are sent again).',
    labelNames: ['sink'] as const,
    registers,
  });
  const backlog = new Map<string, { pending: number; oldestMs: number | null }>();
  new Gauge({
    name: 'poller_outbox_pending',
    help: 'Events in the outbox not yet acknowledged by each sink.',
    labelNames: ['sink'] as const,
    registers,
    collect() {
      for (const [sink, b] of backlog) this.set({ sink }, b.pending);
    },
  });
  new Gauge({
    name: 'poller_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest unsent event of each sink (0 when none); alert when it grows.',
    labelNames: ['sink'] as const,
    registers,
    collect() {
      const now = nowMs();
      for (const [sink, b] of backlog)
        this.set({ sink }, b.oldestMs === null ? 0 : Math.max(0, now - b.oldestMs) / 1000);
    },
  });
  return {
    eventsPublished(sink, n) {
      published.inc({ sink }, n);
    },
    eventsFailed(sink) {
      failed.inc({ sink });
    },
    outboxBacklog(sink, pending, oldestPendingMs) {
      backlog.set(sink, { pending, oldestMs: oldestPendingMs });
    },
  };
}

/** The ledger's size and what retention deleted. */
function ledgerMetrics(registers: Registers): Pick<Metrics, 'ledgerSize' | 'ledgerPruned' | 'ledgerInstances'> {
  const rows = new Gauge({
    name: 'poller_ledger_rows',
    help: 'Rows in the ledger, by table (file versions, plugin runs); bounded by rate x retention window.',
    labelNames: ['table'] as const,
    registers,
  });
  const bytes = new Gauge({
    name: 'poller_ledger_bytes',
    help: 'Size of the ledger on disk (database and write-ahead log).',
    registers,
  });
  const pruned = new Counter({
    name: 'poller_ledger_pruned_total',
    help: 'File versions deleted by retention.',
    registers,
  });
  const instances = new Gauge({
    name: 'poller_ledger_instances_live',
    help: 'Pollers of a shared (PostgreSQL) ledger whose heartbeat is within the lease; only with a shared ledger.',
    registers,
  });
  return {
    ledgerInstances(live) {
      instances.set(live);
    },
    ledgerSize(stats) {
      rows.set({ table: 'files' }, stats.fileRows);
      rows.set({ table: 'plugin_runs' }, stats.pluginRunRows);
      if (stats.bytes !== null) bytes.set(stats.bytes);
    },
    ledgerPruned(files) {
      pruned.inc(files);
    },
  };
}

/** Radar volumes: counts by state, stale collecting ones, closes and their wait. */
function volumeMetrics(registers: Registers): Pick<Metrics, 'volumeCounts' | 'volumeClosed'> {
  const volumes = new Gauge({
    name: 'poller_volumes',
    help: 'Radar volume versions in the ledger, by source and state (collecting, complete, partial, processed, failed, quarantined, superseded).',
    labelNames: ['source', 'state'] as const,
    registers,
  });
  const stale = new Gauge({
    name: 'poller_volumes_stale',
    help: 'Collecting volumes quiet for their whole completeAfter but below the minimum: nothing moves them on their own.',
    labelNames: ['source'] as const,
    registers,
  });
  const closed = new Counter({
    name: 'poller_volumes_closed_total',
    help: 'Volumes handed to volume plugins, complete or partial (declared after the quiet time).',
    labelNames: ['source', 'state'] as const,
    registers,
  });
  const wait = new Histogram({
    name: 'poller_volume_complete_seconds',
    help: 'Time from the first member of a volume landing to the volume being complete (or declared partial).',
    labelNames: ['source', 'state'] as const,
    buckets: VOLUME_BUCKETS_S,
    registers,
  });
  return {
    volumeCounts(counts, staleBySource) {
      volumes.reset();
      for (const c of counts) volumes.set({ source: c.source, state: c.state }, c.count);
      stale.reset();
      for (const [source, n] of staleBySource) stale.set({ source }, n);
    },
    volumeClosed(source, state, waitMs) {
      closed.inc({ source, state });
      wait.observe({ source, state }, Math.max(0, waitMs) / 1000);
    },
  };
}
