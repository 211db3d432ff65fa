/**
 * Events out through real brokers (mosquitto, nats-server -js, rabbitmq-server) started on
 * 127.0.0.1: N files → N valid WIS2 notification messages with the right integrity on each.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { connect as natsConnect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, brokerAvailable, startMosquitto, startNats, startRabbit } from '../helpers/brokers.js';
import { editConfig } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { waitFor } from '../helpers/wait-for.js';
import { wnmProblems } from '../helpers/wnm-schema.js';

/** WNM sinks announce links under a public base (a subscriber cannot follow the FTP source's). */
const PUBLIC_BASE = 'https://data.example.org/poller';

const available = brokerAvailable('mosquitto') && brokerAvailable('nats') && brokerAvailable('rabbitmq');
const TOPIC = 'origin/a/wis2/{centreId}/data/core/weather/surface-based-observations/weather-radar';

describe.skipIf(!available && !process.env['CI'])('events to real brokers', () => {
  let mosq: Broker;
  let nats: Broker;
  let rabbit: Broker;
  let env: EngineEnv;

  beforeAll(async () => {
    [mosq, nats, rabbit] = await Promise.all([startMosquitto(), startNats(), startRabbit()]);
    env = await startEngineEnv({ plugins: [] });
  }, 90_000);

  afterAll(async () => {
    await env?.close();
    await Promise.all([mosq?.destroy(), nats?.destroy(), rabbit?.destroy()]);
  }, 60_000);

  it('N files → N valid WNM on each broker, with the SHA-512 of the landed bytes', async () => {
    const N = 6;
    const contents = new Map<string, Buffer>();
    for (let i = 0; i < N; i++) {
      const body = Buffer.from(`radar volume ${i} `.repeat(50 + i));
      contents.set(`vol/T_PAGA_2026112305${String(i).padStart(2, '0')}00.bufr`, body);
      await env.put(`vol/T_PAGA_2026112305${String(i).padStart(2, '0')}00.bufr`, body);
    }
    await editConfig(env, (c) => ({
      ...c,
      sources: (c['sources'] as Array<Record<string, unknown>>).map((s) => ({
        ...s,
        wnm: {
          geometry: { type: 'Point', coordinates: [2.35, 48.85] },
          datetimePattern: '(?<Y>\\d{4})(?<m>\\d{2})(?<d>\\d{2})(?<H>\\d{2})(?<M>\\d{2})(?<S>\\d{2})\\.bufr$',
        },
      })),
      events: {
        centreId: 'xx-test',
        sinks: [
          { name: 'mq', type: 'mqtt', publicBaseUrl: PUBLIC_BASE, url: mosq.url, topic: TOPIC },
          { name: 'js', type: 'nats', publicBaseUrl: PUBLIC_BASE, url: nats.url, stream: 'WNM' },
          { name: 'rb', type: 'amqp', publicBaseUrl: PUBLIC_BASE, url: rabbit.url, user: 'guest', password: 'guest' },
          { name: 'sr3', type: 'amqp', url: rabbit.url, user: 'guest', password: 'guest', format: 'sr3-v03' },
          {
            name: 'log',
            type: 'file',
            publicBaseUrl: PUBLIC_BASE,
            url: './events.jsonl',
            kinds: ['fetched', 'processed'],
          },
        ],
      },
    }));

    // Subscribers first: MQTT on the WIS2 topic, an AMQP queue bound to the exchange.
    const received: Buffer[] = [];
    const sub = await mqtt.connectAsync(mosq.url, { clientId: 'test-sub' });
    await sub.subscribeAsync('origin/a/wis2/#', { qos: 1 });
    sub.on('message', (_t, payload) => received.push(payload));
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${rabbit.port}`);
    const ch = await conn.createChannel();
    await ch.assertExchange('xpublic', 'topic', { durable: true });
    const q = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(q.queue, 'xpublic', 'origin.#');
    const q3 = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(q3.queue, 'xpublic', 'v03.post.#');
    const amqpGot: Array<{ body: Buffer; id: string; persistent: boolean; key: string }> = [];
    await ch.consume(
      q.queue,
      (m) =>
        m &&
        amqpGot.push({
          body: m.content,
          id: String(m.properties.messageId),
          persistent: m.properties.deliveryMode === 2,
          key: m.fields.routingKey,
        }),
      { noAck: true },
    );
    const sr3Got: Array<{ body: Buffer; key: string }> = [];
    await ch.consume(q3.queue, (m) => m && sr3Got.push({ body: m.content, key: m.fields.routingKey }), { noAck: true });

    const run = await env.cli(['run-once', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { events: Array<{ sink: string; sent: number; pending: number }> };
    for (const e of summary.events) expect(e, e.sink).toMatchObject({ pending: 0 });

    const check = (body: Buffer) => {
      expect(wnmProblems(body)).toEqual([]);
      const m = JSON.parse(body.toString()) as {
        properties: { data_id: string; integrity: { value: string }; datetime: string };
        geometry: unknown;
      };
      const rel = m.properties.data_id.replace('xx-test/radar/', '');
      const bytes = contents.get(rel);
      expect(bytes, rel).toBeDefined();
      expect(m.properties.integrity.value).toBe(
        createHash('sha512')
          .update(bytes as Buffer)
          .digest('base64'),
      );
      expect(m.properties.datetime).toMatch(/^2026-11-23T05:\d\d:00Z$/);
      expect(m.geometry).toEqual({ type: 'Point', coordinates: [2.35, 48.85] });
      return rel;
    };
    await waitFor(() => received.length >= N && amqpGot.length >= N && sr3Got.length >= N, { timeoutMs: 10_000 });
    expect(new Set(received.map(check)).size).toBe(N);
    expect(new Set(amqpGot.map((g) => check(g.body))).size).toBe(N);
    expect(amqpGot.every((g) => g.persistent && g.key.startsWith('origin.a.wis2.xx-test.'))).toBe(true);
    expect(amqpGot.map((g) => g.id).sort()).toEqual(received.map((b) => JSON.parse(b.toString()).id).sort());
    expect(sr3Got.map((g) => g.key)).toEqual(Array(N).fill('v03.post.radar.vol'));
    expect(JSON.parse(sr3Got[0]?.body.toString() ?? '{}')).toMatchObject({ relPath: expect.stringMatching(/^vol\//) });

    // JetStream holds N messages, each with the event id as Nats-Msg-Id.
    const nc = await natsConnect({ servers: `127.0.0.1:${nats.port}` });
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info('WNM');
    expect(info.state.messages).toBe(N);
    const first = await jsm.streams.getMessage('WNM', { seq: 1 });
    expect(wnmProblems(Buffer.from(first.data))).toEqual([]);
    expect(first.header.get('Nats-Msg-Id')).toBe(JSON.parse(Buffer.from(first.data).toString()).id);
    await nc.close();

    // The JSON-lines sink: N data events, then N processed lifecycle events (CloudEvents).
    const lines = (await readFile(path.join(env.dir, 'events.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.message.type === 'Feature')).toHaveLength(N);
    const processed = lines.filter((l) => l.message.specversion === '1.0');
    expect(processed).toHaveLength(N);
    expect(processed[0].message).toMatchObject({ type: 'org.poller.file.processed', severity: 'info' });
    await sub.endAsync();
    await conn.close();
  }, 60_000);
});
