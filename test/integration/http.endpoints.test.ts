import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { evaluateReadiness, type HealthReport } from '../../src/observe/health.js';
import { type HttpServerHandle, startHttpServer } from '../../src/observe/http.js';
import { createLogger } from '../../src/observe/logger.js';
import { createMetrics } from '../../src/observe/metrics.js';
import { findSamples, parsePrometheusText } from '../helpers/prometheus-text.js';

const silent = createLogger({
  level: 'info',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

const opened: HttpServerHandle[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

async function start(health: () => HealthReport | Promise<HealthReport>, signal = new AbortController().signal) {
  const metrics = createMetrics();
  const server = await startHttpServer({ host: '127.0.0.1', port: 0, metrics, health, log: silent, signal });
  opened.push(server);
  return { metrics, server, base: `http://127.0.0.1:${server.port}` };
}

const healthy: HealthReport = { live: true, readiness: { ready: true, unready: [] } };

describe('startHttpServer', () => {
  it('serves /metrics as Prometheus text with every poller series', async () => {
    const { metrics, base } = await start(() => healthy);
    const now = Date.now();
    metrics.filesListed('radar-north', 5);
    metrics.fileFetched('radar-north', 1000, 120, now - 120_000);
    metrics.fileFailed('radar-north', 'process');
    metrics.fileQuarantined('radar-north');
    metrics.pluginRun('exec', 'failed', 30);
    metrics.pollSucceeded('radar-north', now);
    metrics.pollFailed('radar-north');
    metrics.poolInUse('radar-north', 2);
    metrics.listingTruncated('radar-north');

    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const exp = parsePrometheusText(await res.text());
    const series = [
      'poller_files_listed_total',
      'poller_files_fetched_total',
      'poller_files_failed_total',
      'poller_files_quarantined_total',
      'poller_fetched_bytes_total',
      'poller_fetch_duration_seconds_bucket',
      'poller_plugin_duration_seconds_bucket',
      'poller_plugin_failures_total',
      'poller_last_poll_success_timestamp_seconds',
      'poller_newest_file_age_seconds',
      'poller_pool_connections_in_use',
      'poller_poll_failures_total',
      'poller_listing_truncated_total',
    ];
    for (const name of series) expect(findSamples(exp, name).length, name).toBeGreaterThan(0);
    expect(findSamples(exp, 'poller_plugin_failures_total', { plugin: 'exec' })[0]?.value).toBe(1);
    expect(
      findSamples(exp, 'poller_newest_file_age_seconds', { source: 'radar-north' })[0]?.value,
    ).toBeGreaterThanOrEqual(120);
  });

  it('answers /healthz and /readyz from the health report', async () => {
    const startedAtMs = Date.now() - 3_600_000;
    let lastSuccessAtMs = Date.now();
    let live = true;
    const { base } = await start(() => ({
      live,
      problems: live ? [] : ['ledger: database is locked'],
      readiness: evaluateReadiness({
        nowMs: Date.now(),
        startedAtMs,
        sources: [
          { name: 'radar-north', enabled: true, intervalMs: 60_000, lastSuccessAtMs },
          { name: 'radar-off', enabled: false, intervalMs: 60_000 },
        ],
      }),
    }));

    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });

    lastSuccessAtMs = Date.now() - 10 * 60_000;
    const unready = await fetch(`${base}/readyz`);
    expect(unready.status).toBe(503);
    const body = (await unready.json()) as { status: string; unready: { source: string }[] };
    expect(body.status).toBe('unready');
    expect(body.unready.map((u) => u.source)).toEqual(['radar-north']);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    live = false;
    const down = await fetch(`${base}/healthz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: 'down', problems: ['ledger: database is locked'] });
  });

  it('answers 503 when the health callback throws', async () => {
    const { base } = await start(() => {
      throw new Error('ledger closed');
    });
    expect((await fetch(`${base}/healthz`)).status).toBe(503);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
  });

  it('answers 404 and 405 for anything else', async () => {
    const { base } = await start(() => healthy);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('closes when the signal aborts', async () => {
    const controller = new AbortController();
    const { base } = await start(() => healthy, controller.signal);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    controller.abort();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it('rejects with a ConfigError when the port is taken', async () => {
    const { server } = await start(() => healthy);
    await expect(
      startHttpServer({
        host: '127.0.0.1',
        port: server.port,
        metrics: createMetrics(),
        health: () => healthy,
        log: silent,
        signal: new AbortController().signal,
      }),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});
