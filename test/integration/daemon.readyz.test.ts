/**
 * The daemon's HTTP endpoint: `/readyz` turns unready when a source's server goes away and
 * ready again when it returns; `/metrics` carries the poll and fetch series of the source.
 * The server "goes away" behind a TCP proxy that stops listening and cuts its connections.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, editConfig, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { freePort } from '../helpers/free-port.js';
import { findSamples, parsePrometheusText } from '../helpers/prometheus-text.js';
import { readRecords } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

/** A TCP forwarder to the FTP control port that can be switched off and on at the same port. */
interface Proxy {
  port: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

async function startProxy(targetPort: number): Promise<Proxy> {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const up = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer((client) => {
        const upstream = net.connect(targetPort, '127.0.0.1');
        sockets.add(client);
        sockets.add(upstream);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        client.pipe(upstream).pipe(client);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
      server = s;
    });
  const down = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await up();
  return { port, up, down, close: down };
}

let env: EngineEnv | undefined;
let daemon: Daemon | undefined;
let proxy: Proxy | undefined;
afterEach(async () => {
  daemon?.child.kill('SIGKILL');
  await daemon?.exited;
  daemon = undefined;
  await proxy?.close();
  proxy = undefined;
  await env?.close();
  env = undefined;
});

describe('poller run: /readyz and /metrics', () => {
  it('is unready while the server is away and ready again when it returns', async () => {
    env = await startEngineEnv({ source: { every: '300ms' } });
    const e = env;
    const p = await startProxy(e.ftp.port);
    proxy = p;
    await editConfig(e, (c) => {
      const [src] = c['sources'] as Array<Record<string, unknown>>;
      return {
        ...c,
        http: { host: '127.0.0.1', port: 0 },
        sources: [{ ...src, url: `ftp://${e.ftp.user}@127.0.0.1:${p.port}/` }],
      };
    });
    await e.put('r/one.bufr', 'volume');
    daemon = await startDaemon(e);
    const httpPort = Number(daemon.lines().find((l) => l.event === 'daemon.started')?.['httpPort']);
    const base = `http://127.0.0.1:${httpPort}`;
    const readyz = async () => (await fetch(`${base}/readyz`)).status;

    await waitFor(() => readRecords(e.recordLog).length === 1, { timeoutMs: 8_000, what: 'first file processed' });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await readyz()).toBe(200);
    const metrics = parsePrometheusText(await (await fetch(`${base}/metrics`)).text());
    expect(findSamples(metrics, 'poller_files_fetched_total', { source: 'radar' })[0]?.value).toBe(1);
    expect(findSamples(metrics, 'poller_fetched_bytes_total', { source: 'radar' })[0]?.value).toBe(6);
    expect(findSamples(metrics, 'poller_last_poll_success_timestamp_seconds', { source: 'radar' })).toHaveLength(1);
    expect(findSamples(metrics, 'poller_newest_file_age_seconds', { source: 'radar' })).toHaveLength(1);
    expect(findSamples(metrics, 'poller_plugin_duration_seconds_count', { plugin: 'record' })[0]?.value).toBe(1);
    expect(findSamples(metrics, 'poller_pool_connections_in_use', { source: 'radar' })).toHaveLength(1);

    await p.down();
    await waitFor(async () => (await readyz()) === 503, { timeoutMs: 8_000, what: '/readyz 503 with the server away' });
    const body = (await (await fetch(`${base}/readyz`)).json()) as { unready: Array<{ source: string }> };
    expect(body.unready.map((u) => u.source)).toEqual(['radar']);
    // Liveness is about the process, not the sources.
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    // A refused connection is a source-level error: the source backs off instead of hammering.
    // (Logged just after the failed poll that made /readyz 503: waited for, not raced.)
    await daemon.waitForEvent('source.backoff');

    await p.up();
    await waitFor(async () => (await readyz()) === 200, { timeoutMs: 8_000, what: '/readyz 200 with the server back' });
    await daemon.waitForEvent('source.resumed');
  });
});
