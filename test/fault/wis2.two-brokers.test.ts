/**
 * Two brokers, one stream (WIS2 guidance: subscribe to at least two Global Brokers and
 * deduplicate). One WIS2 source on two real mosquitto brokers; 200 notifications are published
 * on both, and one broker is killed with SIGKILL half-way: every file is landed, fetched and
 * announced once, none is lost; a duplicate arriving later on the surviving broker (same message,
 * or a re-publication with a new id but the same data_id and integrity) is not fetched again.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, brokerAvailable, startMosquitto } from '../helpers/brokers.js';
import { startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { type StaticServer, startStaticServer } from '../helpers/static-http.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const available = brokerAvailable('mosquitto');
const TOPIC = 'origin/a/wis2/xx-test/data/core/weather/surface-based-observations/synop';
const N = 200;

describe.skipIf(!available && process.env['CI'] !== 'true')('WIS2 source on two brokers', () => {
  let a: Broker;
  let b: Broker;
  let web: StaticServer;
  let data: TmpDir;
  let env: EngineEnv | undefined;
  beforeAll(async () => {
    data = await makeTmpDir('poller-wis2-data-');
    [a, b, web] = await Promise.all([startMosquitto(), startMosquitto(), startStaticServer(data.path)]);
  });
  afterAll(async () => {
    await env?.close();
    await Promise.all([a?.destroy(), b?.destroy(), web?.close()]);
    await data?.remove();
  });

  it('kill -9 of one broker mid-stream: each file landed and announced once, none lost; late duplicates not fetched', async () => {
    env = await startEngineEnv({
      plugins: [],
      config: {
        sources: [
          {
            name: 'gb',
            url: `wis2+mqtt://127.0.0.1:${a.port}/${TOPIC}/#`,
            include: ['**/*.bufr'],
            every: '1s',
            concurrency: 8,
            wis2: { clientId: `poller-two-brokers-${process.pid}`, brokers: [b.url] },
          },
        ],
        events: {
          centreId: 'xx-test',
          sinks: [
            {
              name: 'log',
              type: 'file',
              url: './events.jsonl',
              kinds: ['fetched'],
              publicBaseUrl: 'https://data.example.org/poller',
            },
          ],
        },
      },
    });
    const e = env;
    const daemon = await startDaemon(e);
    for (const broker of [a, b])
      await daemon.waitForEvent('wis2.subscribed', (l) => l['broker'] === broker.url, 20_000);

    const messages: string[] = [];
    for (let i = 0; i < N; i++) {
      const name = `obs/ISMD${String(i).padStart(3, '0')}.bufr`;
      const bytes = randomBytes(2000);
      await mkdir(path.join(data.path, 'obs'), { recursive: true });
      await writeFile(path.join(data.path, name), bytes);
      messages.push(
        JSON.stringify({
          id: randomUUID(),
          conformsTo: ['http://wis.wmo.int/spec/wnm/1/conf/core'],
          type: 'Feature',
          geometry: null,
          properties: {
            data_id: `xx-test/${name}`,
            pubtime: new Date().toISOString(),
            datetime: null,
            integrity: { method: 'sha512', value: createHash('sha512').update(bytes).digest('base64') },
          },
          links: [{ href: `${web.url}/${name}`, rel: 'canonical', type: 'application/bufr', length: bytes.length }],
        }),
      );
    }
    const pubA = await mqtt.connectAsync(a.url, { clientId: 'pub-a', reconnectPeriod: 0 });
    const pubB = await mqtt.connectAsync(b.url, { clientId: 'pub-b' });
    pubA.on('error', () => undefined);
    const journal = path.join(e.landing, '.state', 'wis2', 'gb.jsonl');
    const taken = () =>
      existsSync(journal)
        ? readFileSync(journal, 'utf8')
            .split('\n')
            .filter((l) => l.startsWith('{"t":"n"')).length
        : 0;
    const t0 = Date.now();
    for (const [i, m] of messages.entries()) {
      if (i === N / 2) await a.kill?.();
      // Both brokers get every notification (A only until it is killed).
      if (i < N / 2) void pubA.publishAsync(`${TOPIC}/x`, m, { qos: 1 }).catch(() => undefined);
      await pubB.publishAsync(`${TOPIC}/x`, m, { qos: 1 });
    }
    await waitFor(() => taken() >= N, { timeoutMs: 30_000, what: `${N} notifications taken` });
    const receivedMs = Date.now() - t0;
    const ledger = e.ledger();
    await waitFor(
      async () => (await ledger.files({ limit: 1000 })).filter((f) => f.state === 'processed').length === N,
      { timeoutMs: 60_000, what: 'every file landed' },
    );
    const landedMs = Date.now() - t0;

    const gets = () => web.requests.filter((r) => r.startsWith('obs/'));
    const announced = () =>
      readFileSync(path.join(e.dir, 'events.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { message: { properties: { data_id: string } } }).message.properties.data_id);
    await waitFor(() => existsSync(path.join(e.dir, 'events.jsonl')) && announced().length >= N, {
      timeoutMs: 20_000,
      what: 'every file announced',
    });
    expect(taken()).toBe(N);
    expect(gets()).toHaveLength(N);
    expect(new Set(gets()).size).toBe(N);
    expect(announced()).toHaveLength(N);
    expect(new Set(announced()).size).toBe(N);
    for (let i = 0; i < N; i += 37) {
      const name = `obs/ISMD${String(i).padStart(3, '0')}.bufr`;
      expect(readFileSync(path.join(e.landing, 'gb', 'xx-test', name))).toEqual(
        readFileSync(path.join(data.path, name)),
      );
    }

    // Later, on the surviving broker: the same message again, and a re-publication of another
    // file under a new id with the same data_id and integrity. Neither is fetched again.
    await pubB.publishAsync(`${TOPIC}/x`, messages[5] as string, { qos: 1 });
    const again = JSON.parse(messages[6] as string) as { id: string; properties: { pubtime: string } };
    again.id = randomUUID();
    again.properties.pubtime = new Date().toISOString();
    await pubB.publishAsync(`${TOPIC}/x`, JSON.stringify(again), { qos: 1 });
    await daemon.waitForEvent('cycle.finished', undefined, 10_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 3000));
    expect(gets()).toHaveLength(N);
    expect(announced()).toHaveLength(N);
    expect(taken()).toBe(N);
    console.log(
      `[wis2] two brokers, ${N} notifications on each (one killed with SIGKILL after ${N / 2}): ${N} taken in ${receivedMs} ms (${Math.round((N * 1000) / receivedMs)} notifications/s), landed in ${landedMs} ms; fetched once: ${new Set(gets()).size}/${N}, GETs ${gets().length}, announced ${announced().length}`,
    );
    await pubA.endAsync(true).catch(() => undefined);
    await pubB.endAsync();
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
  }, 150_000);
});
