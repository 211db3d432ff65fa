/**
 * WIS2 notifications in: a real mosquitto carries WIS2 Notification Messages, a real nginx serves
 * the announced files, and poller cycles run in process against a real SQLite ledger. Each file
 * is fetched once (duplicates and re-deliveries are not), a wrong hash or an error page never
 * lands, notifications published while poller is down arrive after its restart (persistent
 * session), and a broker that restarted without its state gets the subscription again.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type App, openApp, prepareSource } from '../../src/cli/app.js';
import { runCycle } from '../../src/engine/cycle.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import { createHostBudget } from '../../src/sources/ftp/host-budget.js';
import { openSource } from '../../src/sources/index.js';
import type { Source } from '../../src/sources/source.js';
import { type Broker, brokerAvailable, startMosquitto } from '../helpers/brokers.js';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { REPO_ROOT, startEngineEnv } from '../helpers/engine-env.js';
import { httpServerMissing, startWebServer, type TestWebServer } from '../helpers/http-servers.js';
import { createLogSink, type LogSink } from '../helpers/log-sink.js';
import { makeTestCertificate } from '../helpers/tls-cert.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const available = brokerAvailable('mosquitto') && httpServerMissing('nginx-html') === undefined;
const TOPIC = 'origin/a/wis2/xx-test/data/core/weather';

describe.skipIf(!available && process.env['CI'] !== 'true')('WIS2 subscription as a source', () => {
  let broker: Broker;
  let web: TestWebServer;
  let publisher: MqttClient;
  const tmps: TmpDir[] = [];
  let n = 0;
  const open: Array<{ app: App; source: Source }> = [];

  let certDir: TmpDir;
  let caPath: string;

  beforeAll(async () => {
    certDir = await makeTmpDir('poller-wis2-cert-');
    const cert = await makeTestCertificate(certDir.path);
    caPath = cert.certPath;
    [broker, web] = await Promise.all([
      startMosquitto({ tls: { certPath: cert.certPath, keyPath: cert.keyPath } }),
      startWebServer('nginx-html'),
    ]);
    publisher = await mqtt.connectAsync(broker.url, { clientId: 'wis2-test-publisher', protocolVersion: 5 });
  });
  afterAll(async () => {
    await publisher?.endAsync(true);
    await broker?.destroy();
    await web?.close();
    await certDir?.remove();
  });
  afterEach(async () => {
    for (const o of open.splice(0)) await stop(o);
    for (const t of tmps.splice(0)) await t.remove();
  });

  /** A fresh config (own client id, ledger, landing) for one test. */
  async function setup(extra: Record<string, unknown> = {}): Promise<{ configPath: string; clientId: string }> {
    const tmp = await makeTmpDir('poller-wis2-');
    tmps.push(tmp);
    const clientId = `poller-wis2-test-${++n}-${process.pid}`;
    const configPath = path.join(tmp.path, 'poller.yaml');
    const config = {
      landing: './landing',
      ledger: './ledger.db',
      retryBase: '50ms',
      retryMax: '200ms',
      log: { level: 'warn' },
      sources: [
        {
          name: 'wis2',
          url: `wis2+mqtt://127.0.0.1:${broker.port}/${TOPIC}/#`,
          include: ['**/*.bufr'],
          maxAttempts: 2,
          wis2: { clientId },
          ...extra,
        },
      ],
      plugins: [],
    };
    await writeFile(configPath, JSON.stringify(config, null, 2));
    return { configPath, clientId };
  }

  /** A poller process, in process: the app and its WIS2 source, subscribed. */
  async function start(configPath: string, logs: LogSink = createLogSink('info')) {
    const app = await openApp({ configPath, logTo: 'stderr', logLevel: 'silent' });
    const src = prepareSource(app.config.sources[0]!);
    const source = openSource(src, logs.log, { hostBudget: createHostBudget(), stateDir: app.config.stateDir });
    const o = { app, source };
    open.push(o);
    const ctl = new AbortController();
    await source.watch?.(() => undefined, { signal: ctl.signal });
    const cycle = async () =>
      runCycle(src, source, await app.cycleDeps(), { signal: app.shutdown.signal, settleWithinCycle: false });
    return { ...o, logs, cycle };
  }

  async function stop(o: { app: App; source: Source }): Promise<void> {
    const i = open.indexOf(o);
    if (i >= 0) open.splice(i, 1);
    await o.source.close();
    await o.app.close();
  }

  /** Serves `rel` from nginx; returns its bytes. */
  async function serve(rel: string, bytes: Buffer = randomBytes(3000 + Math.floor(Math.random() * 2000))) {
    const full = path.join(web.root, rel);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, bytes);
    return bytes;
  }

  interface WnmOptions {
    id?: string;
    pubtime?: string;
    integrity?: { method: string; value: string } | null;
    length?: number | null;
    href?: string;
    rel?: 'canonical' | 'update';
  }

  function wnm(rel: string, bytes: Buffer, o: WnmOptions = {}): string {
    const integrity =
      o.integrity === null
        ? undefined
        : (o.integrity ?? { method: 'sha512', value: createHash('sha512').update(bytes).digest('base64') });
    return JSON.stringify({
      id: o.id ?? randomUUID(),
      conformsTo: ['http://wis.wmo.int/spec/wnm/1/conf/core'],
      type: 'Feature',
      geometry: null,
      properties: {
        data_id: `xx-test/${rel}`,
        pubtime: o.pubtime ?? new Date().toISOString(),
        datetime: null,
        ...(integrity && { integrity }),
      },
      links: [
        {
          href: o.href ?? `http://127.0.0.1:${web.port}/${rel}`,
          rel: o.rel ?? 'canonical',
          type: 'application/bufr',
          ...(o.length !== null && { length: o.length ?? bytes.length }),
        },
      ],
    });
  }

  const publish = (body: string, sub = 'surface') => publisher.publishAsync(`${TOPIC}/${sub}`, body, { qos: 1 });

  function ledgerOf(configPath: string) {
    return new SqliteLedger(path.join(path.dirname(configPath), 'ledger.db'));
  }

  async function gets(rel: string): Promise<number> {
    return (await web.accessLog()).filter((l) => l === `GET /${rel}`).length;
  }

  /** Cycles until `done` holds (bounded); returns the summed fetch count. */
  async function cycleUntil(p: { cycle: () => Promise<{ fetched: number }> }, done: () => Promise<boolean> | boolean) {
    let fetched = 0;
    await waitFor(
      async () => {
        fetched += (await p.cycle()).fetched;
        return done();
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'the announced files' },
    );
    return fetched;
  }

  const landed = (configPath: string, rel: string) =>
    path.join(path.dirname(configPath), 'landing', 'wis2', 'xx-test', rel);

  it('fetches each announced file once; re-delivered and duplicate notifications are not fetched again', async () => {
    const { configPath } = await setup();
    const p = await start(configPath);
    const files = ['t1/a.bufr', 't1/b.bufr', 't2/c.bufr'];
    const bodies = await Promise.all(files.map((f) => serve(f)));
    const pubtime = new Date(Date.now() - 1000).toISOString();
    const first = files.map((f, i) => wnm(f, bodies[i] as Buffer, { pubtime }));
    for (const m of first) await publish(m);
    // The same message again, and a re-publication with a new id but the same data_id and hash.
    await publish(first[0] as string);
    await publish(wnm('t1/a.bufr', bodies[0] as Buffer));
    // Not wanted by the globs.
    await serve('t1/readme.txt', Buffer.from('hello'));
    await publish(wnm('t1/readme.txt', Buffer.from('hello')));
    const fetched = await cycleUntil(p, () => files.every((f) => existsSync(landed(configPath, f))));
    expect(fetched).toBe(3);
    for (const [i, f] of files.entries()) expect(await readFile(landed(configPath, f))).toEqual(bodies[i]);
    // Later cycles find nothing new.
    expect((await p.cycle()).fetched).toBe(0);
    for (const f of files) expect(await gets(f)).toBe(1);
    expect(await gets('t1/readme.txt')).toBe(0);
    // A notification that only repeats data_id + pubtime is the same version in the ledger.
    await publish(wnm('t2/c.bufr', bodies[2] as Buffer, { pubtime, integrity: null }));
    expect((await p.cycle()).fetched).toBe(0);
    expect(await gets('t2/c.bufr')).toBe(1);
  });

  it('fetches a changed file again when an update notification announces it', async () => {
    const { configPath } = await setup();
    const p = await start(configPath);
    const v1 = await serve('u/vol.bufr', Buffer.from('first version'));
    await publish(wnm('u/vol.bufr', v1, { pubtime: new Date(Date.now() - 2000).toISOString() }));
    await cycleUntil(p, () => existsSync(landed(configPath, 'u/vol.bufr')));
    const v2 = await serve('u/vol.bufr', Buffer.from('second, corrected version'));
    await publish(wnm('u/vol.bufr', v2, { rel: 'update', pubtime: new Date(Date.now() - 1000).toISOString() }));
    await cycleUntil(p, async () => (await readFile(landed(configPath, 'u/vol.bufr'))).equals(v2));
    expect(await gets('u/vol.bufr')).toBe(2);
  });

  it('refuses a hash mismatch and an error page: neither lands; a hex sha256 and a missing length are accepted', async () => {
    const { configPath } = await setup();
    const p = await start(configPath);
    const good = await serve('i/good.bufr');
    const bad = await serve('i/bad.bufr');
    const nolen = await serve('i/nolen.bufr');
    await publish(
      wnm('i/good.bufr', good, {
        integrity: { method: 'sha256', value: createHash('sha256').update(good).digest('hex') },
      }),
    );
    await publish(
      wnm('i/bad.bufr', bad, {
        integrity: { method: 'sha512', value: createHash('sha512').update('other').digest('base64') },
      }),
    );
    await publish(wnm('i/gone.bufr', Buffer.alloc(100)));
    await publish(wnm('i/nolen.bufr', nolen, { length: null }));
    const ledger = ledgerOf(configPath);
    try {
      const state = async (rel: string) => (await ledger.history('wis2', `xx-test/${rel}`))[0];
      await cycleUntil(p, async () => {
        const [g, b, x, l] = await Promise.all(['i/good.bufr', 'i/bad.bufr', 'i/gone.bufr', 'i/nolen.bufr'].map(state));
        return (
          g?.state === 'processed' &&
          b?.state === 'quarantined' &&
          x?.state === 'quarantined' &&
          l?.state === 'processed'
        );
      });
      expect(await state('i/bad.bufr')).toMatchObject({ errorCode: 'POLLER_LANDING_INTEGRITY_MISMATCH' });
      expect((await state('i/gone.bufr'))?.errorCode).toMatch(/^POLLER_HTTP_/);
      expect(existsSync(landed(configPath, 'i/bad.bufr'))).toBe(false);
      expect(existsSync(landed(configPath, 'i/gone.bufr'))).toBe(false);
      expect(await readFile(landed(configPath, 'i/good.bufr'))).toEqual(good);
      expect(await readFile(landed(configPath, 'i/nolen.bufr'))).toEqual(nolen);
    } finally {
      await ledger.close();
    }
  });

  it('logs an invalid message once, with its reason, and goes on', async () => {
    const { configPath } = await setup();
    const p = await start(configPath);
    await publish('{"type":"Feature","id":"x1","properties":{"pubtime":"2026-12-02T10:00:00Z"},"links":[]}');
    await publish('not json at all');
    const ok = await serve('v/ok.bufr');
    await publish(wnm('v/ok.bufr', ok));
    await cycleUntil(p, () => existsSync(landed(configPath, 'v/ok.bufr')));
    const invalid = p.logs.events('wis2.invalid_notification');
    expect(invalid.map((l) => l['reason'])).toEqual(['no "properties.data_id"', 'not JSON']);
  });

  it('receives what was published while it was down, after a restart (persistent session)', async () => {
    const { configPath } = await setup();
    const first = await start(configPath);
    await stop(first);
    const files = Array.from({ length: 5 }, (_, i) => `down/f${i}.bufr`);
    for (const f of files) await publish(wnm(f, await serve(f)));
    const second = await start(configPath);
    const fetched = await cycleUntil(second, () => files.every((f) => existsSync(landed(configPath, f))));
    expect(fetched).toBe(5);
    for (const f of files) expect(await gets(f)).toBe(1);
  });

  it('fetches after a restart what it had acknowledged but not yet fetched (the journal)', async () => {
    const { configPath } = await setup();
    const first = await start(configPath);
    const body = await serve('j/acked.bufr');
    await publish(wnm('j/acked.bufr', body));
    // Received and acknowledged (a cycle would list it), but stopped before any cycle ran.
    await waitFor(async () => (await first.source.list('', { signal: AbortSignal.timeout(5000) })).length > 0, {
      what: 'the notification',
    });
    await stop(first);
    const second = await start(configPath);
    await cycleUntil(second, () => existsSync(landed(configPath, 'j/acked.bufr')));
    expect(await readFile(landed(configPath, 'j/acked.bufr'))).toEqual(body);
    // Once the ledger has it, the journal lets it go: a third start lists nothing.
    await second.cycle();
    await stop(second);
    const third = await start(configPath);
    expect(await third.source.list('', { signal: AbortSignal.timeout(5000) })).toEqual([]);
    expect((await third.cycle()).fetched).toBe(0);
  });

  it('subscribes again after the broker restarted without its state', async () => {
    const { configPath } = await setup();
    const p = await start(configPath);
    await publish(wnm('r/before.bufr', await serve('r/before.bufr')));
    await cycleUntil(p, () => existsSync(landed(configPath, 'r/before.bufr')));
    await broker.stop();
    // The broker forgets every session and subscription.
    await rm(path.join(broker.dir, 'mosquitto.db'), { force: true });
    await broker.start();
    await waitFor(() => p.logs.events('wis2.subscribed').length >= 2, {
      timeoutMs: 15_000,
      what: 'a new subscription',
    });
    await publisher.endAsync(true);
    publisher = await mqtt.connectAsync(broker.url, { clientId: 'wis2-test-publisher', protocolVersion: 5 });
    await publish(wnm('r/after.bufr', await serve('r/after.bufr')));
    await cycleUntil(p, () => existsSync(landed(configPath, 'r/after.bufr')));
    expect(p.logs.events('wis2.broker_down').length).toBeGreaterThanOrEqual(1);
  });
  it('fetches a link with a query string, sending the query as it is (HEAD too when no length)', async () => {
    const { configPath } = await setup();
    const p = await start(configPath);
    const body = await serve('q/a.bufr');
    const href = `http://127.0.0.1:${web.port}/q/a.bufr?token=abc%2Fd&n=1`;
    await publish(wnm('q/a.bufr', body, { href, length: null }));
    await cycleUntil(p, () => existsSync(landed(configPath, 'q/a.bufr')));
    expect(await readFile(landed(configPath, 'q/a.bufr'))).toEqual(body);
    const log = await web.accessLog();
    expect(log).toContain('HEAD /q/a.bufr?token=abc%2Fd&n=1');
    expect(log).toContain('GET /q/a.bufr?token=abc%2Fd&n=1');
  });

  it('poller run-once fetches what the subscription received, then exits', async () => {
    const { configPath } = await setup();
    const first = await start(configPath);
    const body = await serve('once/a.bufr');
    await publish(wnm('once/a.bufr', body));
    await waitFor(async () => (await first.source.list('', { signal: AbortSignal.timeout(5000) })).length > 0, {
      what: 'the notification',
    });
    await stop(first);
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [path.join(REPO_ROOT, 'bin', 'poller.js'), 'run-once', '--json', '--config', configPath],
        { timeout: 30_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end();
    });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ sources: [expect.objectContaining({ fetched: 1, failed: 0 })] });
    expect(await readFile(landed(configPath, 'once/a.bufr'))).toEqual(body);
  });

  it('shares the work between two pollers with $share/<group>/: each file is fetched by one of them', async () => {
    const shared = { url: `wis2+mqtt://127.0.0.1:${broker.port}/$share/pollers/${TOPIC}/#` };
    const a = await setup(shared);
    const b = await setup(shared);
    const pa = await start(a.configPath);
    const pb = await start(b.configPath);
    const files = Array.from({ length: 12 }, (_, i) => `s/f${i}.bufr`);
    for (const f of files) await publish(wnm(f, await serve(f)));
    const where = (f: string) => [existsSync(landed(a.configPath, f)), existsSync(landed(b.configPath, f))];
    await waitFor(
      async () => {
        await pa.cycle();
        await pb.cycle();
        return files.every((f) => where(f).includes(true));
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'every file on one host' },
    );
    for (const f of files) expect(where(f).filter(Boolean), f).toHaveLength(1);
    // Both took part (mosquitto hands shared messages round-robin).
    expect(files.some((f) => where(f)[0])).toBe(true);
    expect(files.some((f) => where(f)[1])).toBe(true);
  });

  it('over TLS (wis2+mqtts://) with the broker CA given', async () => {
    const { configPath } = await setup({
      url: `wis2+mqtts://127.0.0.1:${broker.tlsPort}/${TOPIC}/#`,
      ca: caPath,
    });
    const p = await start(configPath);
    await publish(wnm('tls/one.bufr', await serve('tls/one.bufr')));
    await cycleUntil(p, () => existsSync(landed(configPath, 'tls/one.bufr')));
  });

  it('under `poller run`, a notification starts a cycle at once (no wait for the schedule)', async () => {
    const e = await startEngineEnv({
      config: {
        sources: [
          {
            name: 'wis2',
            url: `wis2+mqtt://127.0.0.1:${broker.port}/${TOPIC}/#`,
            include: ['**/*.bufr'],
            every: '1h',
            wis2: { clientId: `poller-wis2-daemon-${process.pid}` },
          },
        ],
      },
    });
    let daemon: Daemon | undefined;
    try {
      daemon = await startDaemon(e);
      await daemon.waitForEvent('wis2.subscribed', undefined, 20_000);
      await daemon.waitForEvent('cycle.finished', undefined, 20_000);
      const body = await serve('d/one.bufr');
      await publish(wnm('d/one.bufr', body));
      await daemon.waitForEvent('file.fetched', (l) => l['path'] === 'xx-test/d/one.bufr', 20_000);
      expect(await readFile(path.join(e.landing, 'wis2', 'xx-test', 'd', 'one.bufr'))).toEqual(body);
      daemon.child.kill('SIGTERM');
      expect(await daemon.exited).toEqual({ code: 0, signal: null });
    } finally {
      daemon?.child.kill('SIGKILL');
      await e.close();
    }
  });
});
