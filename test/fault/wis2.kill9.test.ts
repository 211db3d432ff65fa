/**
 * kill -9 of `poller run` with a WIS2 subscription, right after a file is renamed into place and
 * before the ledger commit: after a restart every announced file is landed and processed once,
 * none landed before the kill is downloaded again, nothing acknowledged to the broker is lost
 * (the journal).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, brokerAvailable, startMosquitto } from '../helpers/brokers.js';
import { startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { httpServerMissing, startWebServer, type TestWebServer } from '../helpers/http-servers.js';
import { readRecords } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

const available = brokerAvailable('mosquitto') && httpServerMissing('nginx-html') === undefined;
const TOPIC = 'origin/a/wis2/xx-test/data/core/weather';

describe.skipIf(!available && process.env['CI'] !== 'true')('WIS2 subscription: kill -9 and restart', () => {
  let broker: Broker;
  let web: TestWebServer;
  let env: EngineEnv | undefined;
  beforeAll(async () => {
    [broker, web] = await Promise.all([startMosquitto(), startWebServer('nginx-html')]);
  });
  afterAll(async () => {
    await env?.close();
    await broker?.destroy();
    await web?.close();
  });

  it('lands and processes every announced file once', async () => {
    env = await startEngineEnv({
      config: {
        sources: [
          {
            name: 'wis2',
            url: `wis2+mqtt://127.0.0.1:${broker.port}/${TOPIC}/#`,
            include: ['**/*.bufr'],
            every: '1s',
            concurrency: 1,
            wis2: { clientId: `poller-wis2-kill9-${process.pid}` },
          },
        ],
      },
    });
    const e = env;
    // Subscribe once (the broker keeps the session), then publish while poller is away.
    const first = await startDaemon(e);
    await first.waitForEvent('wis2.subscribed', undefined, 20_000);
    first.child.kill('SIGTERM');
    await first.exited;
    const publisher = await mqtt.connectAsync(broker.url, { clientId: 'kill9-publisher' });
    const names = Array.from({ length: 8 }, (_, i) => `k/f${i}.bufr`);
    const bodies = new Map<string, Buffer>();
    // One pubtime for all: the cycle takes them in path order (f0, f1, f2 land before the kill).
    const pubtime = new Date(Date.now() - 1000).toISOString();
    for (const n of names) {
      const bytes = randomBytes(5000);
      bodies.set(n, bytes);
      await mkdir(path.join(web.root, 'k'), { recursive: true });
      await writeFile(path.join(web.root, n), bytes);
      await publisher.publishAsync(
        `${TOPIC}/surface`,
        JSON.stringify({
          id: randomUUID(),
          type: 'Feature',
          geometry: null,
          properties: {
            data_id: `xx-test/${n}`,
            pubtime,
            integrity: { method: 'sha512', value: createHash('sha512').update(bytes).digest('base64') },
          },
          links: [{ href: `http://127.0.0.1:${web.port}/${n}`, rel: 'canonical', length: bytes.length }],
        }),
        { qos: 1 },
      );
    }
    await publisher.endAsync();

    // Killed right after the third rename, before its ledger commit.
    const crashing = e.spawnCli(['run', '--log-level', 'warn'], { POLLER_TEST_CRASH_AT: 'after-rename:3' });
    const crashed = await new Promise<NodeJS.Signals | null>((resolve) => crashing.on('exit', (_c, s) => resolve(s)));
    expect(crashed).toBe('SIGKILL');
    // What was renamed into place before the kill (downloads run concurrently: not always the
    // first three announced).
    const landedAtKill = new Set(
      (await readdir(path.join(e.landing, 'wis2', 'xx-test', 'k')).catch(() => [] as string[])).map((f) => `k/${f}`),
    );
    expect(landedAtKill.size).toBeGreaterThanOrEqual(3);

    const daemon = await startDaemon(e);
    const ledger = e.ledger();
    await waitFor(
      async () => (await ledger.files({ limit: 100 })).filter((f) => f.state === 'processed').length === names.length,
      { timeoutMs: 20_000, what: 'every file processed' },
    );
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });

    const files = await ledger.files({ limit: 100 });
    expect(files.map((f) => f.path).sort()).toEqual(names.map((n) => `xx-test/${n}`).sort());
    expect(new Set(files.map((f) => f.state))).toEqual(new Set(['processed']));
    // Plugins run at least once: a run the kill cut short before its commit runs again.
    const runs = readRecords(e.recordLog).map((r) => r.path);
    for (const n of names) expect(runs.filter((p) => p === `xx-test/${n}`).length, n).toBeGreaterThanOrEqual(1);
    expect(runs.length).toBeLessThanOrEqual(names.length + 1);
    for (const n of names) {
      expect(await readFile(path.join(e.landing, 'wis2', 'xx-test', n))).toEqual(bodies.get(n));
    }
    // Files landed before the kill (the last one renamed but not committed) are recognised as
    // landed and not downloaded again; only a transfer under way at the kill is fetched again.
    const gets = (await web.accessLog()).filter((l) => l.startsWith('GET /k/'));
    const count = (n: string) => gets.filter((l) => l === `GET /${n}`).length;
    for (const n of names) {
      if (landedAtKill.has(n)) expect(count(n), n).toBe(1);
      else expect([1, 2], n).toContain(count(n));
    }
  });
});
