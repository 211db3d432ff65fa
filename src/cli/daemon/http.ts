/**
 * The daemon's HTTP endpoint (when `http:` is configured): probes from the running generation and
 * the event hub, metrics refreshed at each scrape, and the status page from the ledger.
 */

import { nominalIntervalMs } from '../../engine/scheduler.js';
import { staleVolumeCount } from '../../engine/volume-stage.js';
import { evaluateReadiness, type HealthReport } from '../../observe/health.js';
import type { HttpServerHandle } from '../../observe/http.js';
import type { App } from '../app.js';
import { explainPath, whyLines } from '../inspect.js';
import type { Releasers } from '../releasers.js';
import type { DaemonEvents } from './events.js';
import type { Generations } from './generation.js';
import type { DaemonTelemetry } from './metrics.js';

export interface DaemonHttpContext {
  app: App;
  generations: Generations;
  events: DaemonEvents;
  telemetry: DaemonTelemetry;
  /** Sources held paused by a source-level error, with its message. */
  paused: ReadonlyMap<string, string>;
  startedAtMs: number;
}

/** Listen when `http:` is set; the server closes at release. */
export async function startDaemonHttp(
  ctx: DaemonHttpContext,
  releasers: Releasers,
): Promise<HttpServerHandle | undefined> {
  const { app } = ctx;
  const httpConfig = app.config.http;
  if (!httpConfig) return undefined;
  const { startHttpServer } = await import('../../observe/http.js');
  const { collectStatus } = await import('../../status/collect.js');
  const { statusPage } = await import('../../status/serve.js');
  const metrics = ctx.telemetry.metrics;
  const report = () =>
    collectStatus({
      ledger: app.ledger,
      sources: ctx.generations.current.config.sources,
      paused: ctx.paused,
      nowMs: Date.now(),
      startedAtMs: ctx.startedAtMs,
      products: ctx.telemetry.lateness.evaluate(),
    });
  const why = async (remotePath: string, sourceName: string | undefined): Promise<string> => {
    const answers = await explainPath(app.ledger, ctx.generations.current.config, remotePath, sourceName);
    if (answers.length === 0) return `no source named "${sourceName ?? ''}" in the config\n`;
    return `${whyLines(answers).join('\n')}\n`;
  };
  const render = await scrapeMetrics(ctx);
  const http = await startHttpServer({
    host: httpConfig.host,
    port: httpConfig.port,
    metrics: { contentType: metrics.contentType, render },
    health: () => health(ctx),
    status: statusPage(report, why, httpConfig.refreshMs),
    ...(httpConfig.auth && { auth: httpConfig.auth }),
    log: app.log,
    signal: app.shutdown.signal,
  });
  releasers.add(() => http.close());
  return http;
}

/** Live unless the process is broken; degraded by lagging sinks; ready once each source polled. */
function health(ctx: DaemonHttpContext): HealthReport {
  const hub = ctx.events.hub;
  const nowMs = Date.now();
  return {
    live: true,
    ...(hub && {
      degraded: hub
        .lagging(nowMs)
        .map(
          (l) =>
            `sink ${l.sink}: ${l.pending} event(s) pending, oldest ${Math.round(l.oldestPendingAgeMs / 1000)} s old`,
        ),
    }),
    readiness: evaluateReadiness({
      nowMs,
      startedAtMs: ctx.startedAtMs,
      sources: ctx.generations.current.config.sources.map((s) => ({
        name: s.name,
        enabled: s.enabled,
        intervalMs: nominalIntervalMs(s),
        lastSuccessAtMs: ctx.telemetry.lastSuccessMs.get(s.name),
      })),
    }),
  };
}

/** The scrape: gauges read at scrape time (backlog, pools, lateness, volumes), then the text. */
async function scrapeMetrics(ctx: DaemonHttpContext): Promise<() => Promise<string>> {
  const { freshness, isLate } = await import('../../status/freshness.js');
  const { app } = ctx;
  const metrics = ctx.telemetry.metrics;
  /** `poller_source_late` from the same freshness rule as the status page. */
  const updateLateness = async (sources: typeof app.config.sources) => {
    const expecting = sources.filter((s) => s.expectEveryMs !== undefined);
    if (expecting.length === 0) return;
    const newest = new Map((await app.ledger.status()).map((r) => [r.name, r.newestFetchedMtimeMs]));
    const nowMs = Date.now();
    for (const s of expecting) {
      const f = freshness({
        expectEveryMs: s.expectEveryMs,
        newestMtimeMs: newest.get(s.name) ?? null,
        nowMs,
        startedAtMs: ctx.startedAtMs,
      });
      metrics.sourceLate(s.name, s.enabled && isLate(f));
    }
  };
  return async () => {
    const sources = ctx.generations.current.config.sources;
    for (const d of ctx.events.hub?.stats() ?? []) metrics.outboxBacklog(d.sink, d.pending, d.oldestPendingMs);
    for (const s of sources) {
      const n = app.connectionsInUse(s);
      if (n !== undefined) metrics.poolInUse(s.name, n);
    }
    await updateLateness(sources);
    await ctx.telemetry.refresh();
    if (app.ledger.volumes && sources.some((s) => s.volumes)) {
      const stale = new Map<string, number>();
      for (const s of sources) if (s.volumes) stale.set(s.name, await staleVolumeCount(app.ledger, s, Date.now()));
      metrics.volumeCounts(await app.ledger.volumes.volumeCounts(), stale);
    }
    return metrics.render();
  };
}
