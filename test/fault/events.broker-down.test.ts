/**
 * Events survive a dead broker and a crash: the outbox grows while mosquitto is down, health
 * says degraded, and everything is delivered once it is back; a kill -9 between JetStream's
 * acknowledgement and the outbox mark re-sends on restart, and JetStream reports the duplicate.
 */
import mqtt from 'mqtt';
import { connect as natsConnect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, brokerAvailable, startMosquitto, startNats } from '../helpers/brokers.js';
import { editConfig, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';

/** WNM sinks announce links under a public base (a subscriber cannot follow the FTP source's). */
const PUBLIC_BASE = 'https://data.example.org/poller';

const available = brokerAvailable('mosquitto') && brokerAvailable('nats');

describe.skipIf(!available && !process.env['CI'])('events through broker faults', () => {
  let mosq: Broker;
  let nats: Broker;
  const envs: EngineEnv[] = [];

  beforeAll(async () => {
    [mosq, nats] = await Promise.all([startMosquitto(), startNats()]);
  }, 30_000);

  afterAll(async () => {
    for (const e of envs) await e.close();
    await Promise.all([mosq?.destroy(), nats?.destroy()]);
  }, 30_000);

  it('broker down: the outbox grows, health is degraded, nothing is lost; back: all delivered', async () => {
    const env = await startEngineEnv({ plugins: [], source: { every: '200ms' } });
    envs.push(env);
    const port = await freePort();
    await editConfig(env, (c) => ({
      ...c,
      http: { port },
      events: {
        centreId: 'xx-test',
        sinks: [
          { name: 'mq', type: 'mqtt', publicBaseUrl: PUBLIC_BASE, url: mosq.url, lagAlert: '300ms', timeout: '1s' },
        ],
      },
    }));
    // A persistent subscriber: mosquitto keeps its queue across the broker's restart.
    const ids = new Set<string>();
    const sub = await mqtt.connectAsync(mosq.url, { clientId: 'fault-sub', clean: false, reconnectPeriod: 200 });
    await sub.subscribeAsync('origin/a/wis2/#', { qos: 1 });
    sub.on('message', (_t, payload) => ids.add(JSON.parse(payload.toString()).id));

    await mosq.stop();
    const daemon = await startDaemon(env);
    const N = 5;
    for (let i = 0; i < N; i++) await env.put(`f${i}.bufr`, `data ${i}`);
    const ledger = env.ledger();
    await waitFor(async () => (await ledger.outboxStats()).find((s) => s.sink === 'mq')?.pending === N, {
      timeoutMs: 15_000,
      what: 'N pending events',
    });
    const health = await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        const body = (await res.json()) as { status: string; degraded?: string[] };
        // The daemon samples the outbox periodically: wait until its figure has caught up.
        const caughtUp = body.degraded?.[0]?.startsWith(`sink mq: ${N} event(s) pending`) === true;
        return res.status === 200 && body.status === 'degraded' && caughtUp ? body : undefined;
      },
      { timeoutMs: 10_000, what: '/healthz degraded with every pending event' },
    );
    expect(health.degraded?.[0]).toMatch(/^sink mq: 5 event\(s\) pending/);
    // Files land regardless: ingest never waits for the broker.
    expect((await ledger.files({ state: 'processed' })).length).toBe(N);

    await mosq.start();
    await waitFor(() => ids.size === N, { timeoutMs: 30_000, what: 'all events delivered after the restart' });
    await waitFor(async () => ((await ledger.outboxStats()).find((s) => s.sink === 'mq')?.pending ?? 0) === 0, {
      timeoutMs: 10_000,
      what: 'outbox empty',
    });
    await waitFor(
      async () =>
        ((await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { status: string }).status === 'ok',
      {
        timeoutMs: 10_000,
        what: 'healthz ok',
      },
    );
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/poller_events_published_total\{sink="mq"\} 5/);
    expect(metrics).toMatch(/poller_events_failed_total\{sink="mq"\} [1-9]/);
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    await sub.endAsync();
  }, 90_000);

  it('kill -9 between the acknowledgement and the mark: the restart re-sends, JetStream reports the duplicate', async () => {
    const env = await startEngineEnv({ plugins: [] });
    envs.push(env);
    await editConfig(env, (c) => ({
      ...c,
      events: {
        centreId: 'xx-kill',
        sinks: [
          {
            name: 'js',
            type: 'nats',
            publicBaseUrl: PUBLIC_BASE,
            url: nats.url,
            stream: 'KILL',
            topic: 'origin/a/wis2/{centreId}/data/core/weather/experimental/kill/{source}',
            inFlight: 1,
          },
        ],
      },
    }));
    const N = 3;
    for (let i = 0; i < N; i++) await env.put(`k${i}.bufr`, `kill ${i}`);
    const crashed = await env.cli(['run-once', '--json'], { env: { POLLER_TEST_CRASH_AT: 'after-event-ack' } });
    expect(crashed.signal).toBe('SIGKILL');
    const ledger = env.ledger();
    expect((await ledger.outboxStats()).find((s) => s.sink === 'js')?.pending).toBe(N);

    const again = await env.cli(['run-once', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const summary = JSON.parse(again.stdout) as {
      events: Array<{ sink: string; sent: number; duplicates: number; pending: number }>;
    };
    expect(summary.events).toEqual([{ sink: 'js', sent: N, duplicates: 1, pending: 0, lastError: null }]);
    const nc = await natsConnect({ servers: `127.0.0.1:${nats.port}` });
    const info = await (await nc.jetstreamManager()).streams.info('KILL');
    expect(info.state.messages).toBe(N);
    await nc.close();
  }, 60_000);
});
