/**
 * Sinks the broker suite does not cover, each against a real endpoint on 127.0.0.1: the webhook
 * sink against an in-process HTTP server (2xx acknowledges, 5xx is retried with the same event
 * id, order kept), and the MQTT sink speaking MQTT 3.1.1 (`mqttVersion: 4`) and over TLS to a
 * mosquitto with a throwaway certificate (and refusing it without the CA).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, brokerAvailable, startMosquitto } from '../helpers/brokers.js';
import { editConfig } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { makeTestCertificate } from '../helpers/tls-cert.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/** WNM sinks announce links under a public base (a subscriber cannot follow the FTP source's). */
const PUBLIC_BASE = 'https://data.example.org/poller';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

interface RunSummary {
  events: Array<{ sink: string; sent: number; pending: number; lastError: string | null }>;
}

async function withSinks(files: number, sinks: Array<Record<string, unknown>>): Promise<EngineEnv> {
  const e = await startEngineEnv();
  for (let i = 0; i < files; i++) await e.put(`vol/v${i}.bufr`, `radar volume ${i}`);
  await editConfig(e, (c) => ({ ...c, events: { centreId: 'xx-test', sinks } }));
  return e;
}

async function runOnce(e: EngineEnv, ...args: string[]): Promise<RunSummary> {
  const run = await e.cli(['run-once', '--json', ...args]);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as RunSummary;
}

describe('webhook sink', () => {
  let server: http.Server;
  let port: number;
  const received: Array<{ id: string; topic: string; status: number; type: string; kind: string }> = [];
  /** Answers 503 to the next this many requests. */
  let failNext = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type?: string; kind?: string };
        const status = failNext > 0 ? 503 : 204;
        if (failNext > 0) failNext--;
        received.push({
          id: String(req.headers['idempotency-key']),
          topic: String(req.headers['x-poller-topic']),
          status,
          type: String(req.headers['content-type']),
          kind: body.type === 'Feature' ? 'data' : String(body.type),
        });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('a 2xx acknowledges; a 5xx is sent again with the same event id; the order is kept', async () => {
    received.length = 0;
    failNext = 2;
    env = await withSinks(3, [
      {
        name: 'hook',
        type: 'webhook',
        publicBaseUrl: PUBLIC_BASE,
        url: `http://127.0.0.1:${port}/hook`,
        kinds: ['fetched', 'processed'],
        inFlight: 1,
      },
    ]);
    const summary = await runOnce(env);
    expect(summary.events).toEqual([expect.objectContaining({ sink: 'hook', sent: 6, pending: 0 })]);
    const accepted = received.filter((r) => r.status === 204);
    const refused = received.filter((r) => r.status === 503);
    expect(refused).toHaveLength(2);
    expect(new Set(accepted.map((r) => r.id)).size).toBe(6);
    // The refused event was sent again, under its id, before anything after it.
    expect(refused[0]?.id).toBe(refused[1]?.id);
    expect(accepted[0]?.id).toBe(refused[0]?.id);
    // Outbox order: the first attempts, in order, are the acknowledged ones, in order.
    const firstAttempts = [...new Set(received.map((r) => r.id))];
    expect(accepted.map((r) => r.id)).toEqual(firstAttempts);
    // Data events (WNM) for the fetches, lifecycle events (CloudEvents) for the processing.
    expect(accepted.filter((r) => r.kind === 'data')).toHaveLength(3);
    expect(accepted.every((r) => r.topic.length > 0 && r.type.includes('json'))).toBe(true);
  });

  it('a dead endpoint leaves the events in the outbox; the next run sends them', async () => {
    received.length = 0;
    failNext = 1000;
    env = await withSinks(2, [
      {
        name: 'hook',
        type: 'webhook',
        publicBaseUrl: PUBLIC_BASE,
        url: `http://127.0.0.1:${port}/hook`,
        kinds: ['fetched'],
      },
    ]);
    const down = await runOnce(env, '--events-wait', '1s');
    expect(down.events[0]).toMatchObject({ sink: 'hook', sent: 0, pending: 2 });
    expect(down.events[0]?.lastError).toContain('HTTP 503');
    const refusedIds = new Set(received.map((r) => r.id));
    failNext = 0;
    const up = await runOnce(env);
    expect(up.events[0]).toMatchObject({ sink: 'hook', sent: 2, pending: 0 });
    expect(new Set(received.filter((r) => r.status === 204).map((r) => r.id))).toEqual(refusedIds);
  });
});

describe.skipIf(!brokerAvailable('mosquitto') && process.env['CI'] !== 'true')('MQTT sink: 3.1.1 and TLS', () => {
  let broker: Broker;
  let tmp: TmpDir;
  let caPath: string;

  beforeAll(async () => {
    tmp = await makeTmpDir('poller-mqtt-tls-');
    const cert = await makeTestCertificate(tmp.path);
    caPath = cert.certPath;
    broker = await startMosquitto({ tls: { certPath: cert.certPath, keyPath: cert.keyPath } });
  });
  afterAll(async () => {
    await broker?.destroy();
    await tmp?.remove();
  });

  /** A v5 subscriber on `filter`: the messages and whether each carried MQTT 5 user properties. */
  async function subscribe(filter: string) {
    const got: Array<{ topic: string; v5props: boolean }> = [];
    const sub = await mqtt.connectAsync(broker.url, {
      clientId: `sub-${filter.length}-${Date.now()}`,
      protocolVersion: 5,
    });
    await sub.subscribeAsync(filter, { qos: 1 });
    sub.on('message', (topic, _payload, packet) =>
      got.push({ topic, v5props: packet.properties?.userProperties !== undefined }),
    );
    return { got, close: () => sub.endAsync(true) };
  }

  it('publishes with MQTT 3.1.1 when told to (mqttVersion: 4): no MQTT 5 properties reach subscribers', async () => {
    const sub = await subscribe('origin/a/wis2/xx-test/data/core/weather/experimental/v4/#');
    try {
      env = await withSinks(3, [
        {
          name: 'v4',
          type: 'mqtt',
          publicBaseUrl: PUBLIC_BASE,
          url: broker.url,
          mqttVersion: 4,
          topic: 'origin/a/wis2/{centreId}/data/core/weather/experimental/v4/{source}/{dirs}',
          kinds: ['fetched'],
        },
        {
          name: 'v5',
          type: 'mqtt',
          publicBaseUrl: PUBLIC_BASE,
          url: broker.url,
          topic: 'origin/a/wis2/{centreId}/data/core/weather/experimental/v5/{source}/{dirs}',
          kinds: ['fetched'],
        },
      ]);
      const v5 = await subscribe('origin/a/wis2/xx-test/data/core/weather/experimental/v5/#');
      try {
        const summary = await runOnce(env);
        for (const e of summary.events) expect(e, e.sink).toMatchObject({ sent: 3, pending: 0 });
        await waitFor(() => sub.got.length === 3 && v5.got.length === 3, { what: 'six messages' });
        expect(sub.got.every((m) => !m.v5props)).toBe(true);
        expect(v5.got.every((m) => m.v5props)).toBe(true);
      } finally {
        await v5.close();
      }
    } finally {
      await sub.close();
    }
  });

  it('publishes over TLS with the CA given, and refuses a broker it cannot verify', async () => {
    const sub = await subscribe('origin/a/wis2/xx-test/data/core/weather/experimental/tls/#');
    try {
      env = await withSinks(2, [
        {
          name: 'tls',
          type: 'mqtt',
          publicBaseUrl: PUBLIC_BASE,
          url: broker.tlsUrl,
          ca: caPath,
          topic: 'origin/a/wis2/{centreId}/data/core/weather/experimental/tls/{source}',
          kinds: ['fetched'],
        },
        {
          name: 'untrusted',
          type: 'mqtt',
          publicBaseUrl: PUBLIC_BASE,
          url: broker.tlsUrl,
          topic: 'origin/a/wis2/{centreId}/data/core/weather/experimental/untrusted/{source}',
          kinds: ['fetched'],
        },
      ]);
      const summary = await runOnce(env, '--events-wait', '2s');
      const by = new Map(summary.events.map((e) => [e.sink, e]));
      expect(by.get('tls')).toMatchObject({ sent: 2, pending: 0 });
      expect(by.get('untrusted')).toMatchObject({ sent: 0, pending: 2 });
      expect(by.get('untrusted')?.lastError).toMatch(/certificate/i);
      await waitFor(() => sub.got.length === 2, { what: 'two messages over TLS' });
    } finally {
      await sub.close();
    }
  });
});
