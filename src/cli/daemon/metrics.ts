/**
 * The daemon's Prometheus metrics: created once per process, fed by cycle events and runner
 * hooks; the last-success gauge and the readiness clock carry over from the ledger.
 */
import type { CycleEvents } from '../../engine/cycle.js';
import type { Metrics } from '../../observe/metrics.js';
import type { RunnerObserver } from '../../plugins/runner.js';
import { type App, instanceId } from '../app.js';

export interface DaemonTelemetry {
  metrics: Metrics;
  /** The last successful poll of each source (readiness). */
  lastSuccessMs: Map<string, number>;
  cycleEvents: CycleEvents;
  observer: RunnerObserver;
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
  return {
    metrics,
    lastSuccessMs,
    cycleEvents: metricEvents(metrics, lastSuccessMs),
    observer: runnerMetrics(metrics),
  };
}

/** CycleEvents → metrics helpers, plus the last successful poll of each source for readiness. */
function metricEvents(metrics: Metrics, lastSuccessMs: Map<string, number>): CycleEvents {
  return {
    listed(source, files, truncated, unparsedLines) {
      metrics.filesListed(source, files);
      if (truncated) metrics.listingTruncated(source);
      if (unparsedLines) metrics.listingLinesUnparsed(source, unparsedLines);
    },
    fetched(source, _path, sizeBytes, durationMs, mtimeMs) {
      metrics.fileFetched(source, sizeBytes, durationMs, mtimeMs);
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
