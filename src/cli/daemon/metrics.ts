/**
 * The daemon's Prometheus metrics: created once per process, fed by cycle events and runner
 * hooks; the last-success gauge and the readiness clock carry over from the ledger.
 */
import type { CycleEvents } from '../../engine/cycle.js';
import type { LatenessWatch } from '../../lateness/watch.js';
import { hasInstanceRegistry } from '../../ledger/ledger.js';
import type { Metrics } from '../../observe/metrics.js';
import type { RunnerObserver } from '../../plugins/runner.js';
import { type App, instanceId } from '../app.js';
import type { Generation } from './generation.js';

export interface DaemonTelemetry {
  metrics: Metrics;
  /** The last successful poll of each source (readiness). */
  lastSuccessMs: Map<string, number>;
  cycleEvents: CycleEvents;
  observer: RunnerObserver;
  /** Lateness per product (`expect:`), into `poller_product_late` and the status page. */
  lateness: LatenessWatch;
  /** A generation starts running: its sources' lateness rules, and their counters at 0. */
  follow(g: Generation): void;
  /** At a scrape: gauges read from the ledger (instances of a shared ledger). */
  refresh(): Promise<void>;
}

export async function startTelemetry(app: App): Promise<DaemonTelemetry> {
  // Loaded here, not at the top: every other command starts faster without prom-client.
  const { createMetrics } = await import('../../observe/metrics.js');
  const metrics = createMetrics({
    processMetrics: true,
    ...(app.config.postgres && { instance: instanceId(app.config) }),
  });
  const lastSuccessMs = new Map<string, number>();
  // The last-success gauge carries over a restart, so an alert on its age does not reset.
  const configured = new Set(app.config.sources.map((s) => s.name));
  for (const s of await app.ledger.status()) {
    if (configured.has(s.name) && s.lastSuccessMs !== null) metrics.pollSucceeded(s.name, s.lastSuccessMs);
  }
  const lateness = await startDaemonLateness(app, metrics);
  return {
    metrics,
    lastSuccessMs,
    cycleEvents: metricEvents(metrics, lastSuccessMs, lateness),
    observer: runnerMetrics(metrics),
    lateness,
    follow(g) {
      lateness.reload(g.config.sources);
      // Failure and quarantine counters exist at 0 from the start (see `Metrics.declare`).
      metrics.declare({
        sources: g.config.sources.filter((s) => s.enabled).map((s) => s.name),
        plugins: g.runner.plugins.map((p) => p.name),
      });
    },
    async refresh() {
      lateness.evaluate();
      if (!hasInstanceRegistry(app.ledger)) return;
      const nowMs = Date.now();
      const live = (await app.ledger.instances()).filter((i) => nowMs - i.heartbeatMs <= app.config.leaseTimeMs);
      metrics.ledgerInstances(live.length);
    },
  };
}

/**
 * Seeded from the ledger (a restart keeps what it knew), evaluated on a clock, into
 * `poller_product_late` and the `late` / `on-time` events. On a shared ledger each instance
 * fetches only its share, so the newest versions are read again before each evaluation.
 */
async function startDaemonLateness(app: App, metrics: Metrics): Promise<LatenessWatch> {
  const { startLatenessWatch, SEED_VERSIONS, REFRESH_VERSIONS } = await import('../../lateness/watch.js');
  const { productEvent } = await import('../../lateness/events.js');
  const watch: LatenessWatch = startLatenessWatch({
    sources: app.config.sources,
    startedAtMs: Date.now(),
    log: app.log,
    onEvaluated: (products) => {
      for (const p of products) metrics.productLate(p.source, p.product, p.state === 'late');
    },
    onTransition: (t) => {
      const { kind, fact } = productEvent(t);
      app.ledger
        .emitProductEvent(kind, t.source, fact, Date.now())
        .catch((err: Error) =>
          app.log.error(
            { event: 'lateness.event_failed', source: t.source, product: t.product, err: err.message },
            `${t.source}: the ${kind} event of ${t.product} was not written: ${err.message}`,
          ),
        );
    },
    ...(hasInstanceRegistry(app.ledger) && {
      refresh: async (sources) => {
        for (const source of sources) watch.seed(await app.ledger.files({ source, limit: REFRESH_VERSIONS }));
      },
    }),
  });

  for (const s of app.config.sources)
    if (s.expect) watch.seed(await app.ledger.files({ source: s.name, limit: SEED_VERSIONS }));
  return watch;
}

/** CycleEvents → metrics helpers, plus the last successful poll of each source for readiness. */
function metricEvents(
  metrics: Metrics,
  lastSuccessMs: Map<string, number>,
  lateness: Pick<LatenessWatch, 'fileFetched'>,
): CycleEvents {
  return {
    listed(source, files, truncated, unparsedLines) {
      metrics.filesListed(source, files);
      if (truncated) metrics.listingTruncated(source);
      if (unparsedLines) metrics.listingLinesUnparsed(source, unparsedLines);
    },
    fetched(source, path, sizeBytes, durationMs, mtimeMs) {
      metrics.fileFetched(source, sizeBytes, durationMs, mtimeMs);
      lateness.fileFetched(source, path, mtimeMs);
    },
    fetchFailed(source, _path, _code, quarantined) {
      metrics.fileFailed(source, 'fetch');
      if (quarantined) metrics.fileQuarantined(source);
    },
    pluginRan(plugin, ok, durationMs) {
      metrics.pluginRun(plugin, ok ? 'succeeded' : 'failed', durationMs);
    },
    volumeClosed(source, state, waitMs) {
      metrics.volumeClosed(source, state, waitMs);
    },
    processed(source, _path, state) {
      if (state === 'failed' || state === 'quarantined') metrics.fileFailed(source, 'process');
      if (state === 'quarantined') metrics.fileQuarantined(source);
    },
    polled(source, ok) {
      const now = Date.now();
      if (ok) {
        lastSuccessMs.set(source, now);
        metrics.pollSucceeded(source, now);
      } else metrics.pollFailed(source);
    },
  };
}

/** Runner hooks → metrics: runs in flight, time waiting for a worker, workers replaced. */
function runnerMetrics(metrics: Metrics): RunnerObserver {
  return {
    inFlight: (plugin, n) => metrics.pluginInFlight(plugin, n),
    waited: (plugin, ms) => metrics.pluginWaited(plugin, ms),
    hostReplaced: (plugin, reason) => metrics.pluginHostReplaced(plugin, reason),
  };
}
