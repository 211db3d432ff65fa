/**
 * WIS2 deletions in: a real mosquitto carries a notification with a `deletion` link for a file
 * poller fetched; the ledger records it gone, said by that notification, at its pubtime (`poller
 * why` says so), a `gone` event is written (a WNM sink relays it as an official `deletion`), and
 * with `mirrorDeletes` the landed copy goes. A deletion of data poller never had is said once; a
 * deletion that arrives before the fetch means the file is not fetched; a restart replays
 * nothing already recorded.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type App, openApp, prepareSource } from '../../src/cli/app.js';
import { runCycle } from '../../src/engine/cycle.js';
import { formatEvent, isUnsendable } from '../../src/events/payload.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import { createHostBudget } from '../../src/sources/ftp/host-budget.js';
import { openSource } from '../../src/sources/index.js';
import type { Source } from '../../src/sources/source.js';
import { type Broker, brokerAvailable, startMosquitto } from '../helpers/brokers.js';
import { REPO_ROOT } from '../helpers/engine-env.js';
import { httpServerMissing, startWebServer, type TestWebServer } from '../helpers/http-servers.js';
import { createLogSink, type LogSink } from '../helpers/log-sink.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { officialAvailable, officialProblems } from '../helpers/wis2-official.js';

const available = brokerAvailable('mosquitto') && httpServerMissing('nginx-html') === undefined;
const TOPIC = 'origin/a/wis2/xx-test/data/core/weather';
const OUT_TOPIC = 'origin/a/wis2/{centreId}/data/core/weather/surface-based-observations/synop';

describe.skipIf(!available && process.env['CI'] !== 'true')('WIS2 deletions received', () => {
  let broker: Broker;
  let web: TestWebServer;
  let publisher: MqttClient;
  let tmp: TmpDir;
  const open: Array<{ app: App; source: Source }> = [];

  beforeAll(async () => {
    [broker, web] = await Promise.all([startMosquitto(), startWebServer('nginx-html')]);
    publisher = await mqtt.connectAsync(broker.url, { clientId: 'wis2-deletions-publisher', protocolVersion: 5 });
  });
  afterAll(async () => {
    await publisher?.endAsync(true);
    await broker?.destroy();
    await web?.close();
  });
  afterEach(async () => {
    for (const o of open.splice(0)) await stop(o);
    await tmp?.remove();
  });

  async function setup(): Promise<string> {
    tmp = await makeTmpDir('poller-wis2-del-');
    const configPath = path.join(tmp.path, 'poller.yaml');
    const config = {
      landing: './landing',
      ledger: './ledger.db',
      log: { level: 'warn' },
      sources: [
        {
          name: 'wis2',
          url: `wis2+mqtt://127.0.0.1:${broker.port}/${TOPIC}/#`,
          include: ['**/*.bufr'],
          mirrorDeletes: true,
          wis2: { clientId: `poller-wis2-del-${process.pid}` },
        },
      ],
      events: {
        centreId: 'xx-test',
        sinks: [
          {
            name: 'relay',
            type: 'file',
            url: './events.jsonl',
            kinds: ['fetched', 'gone'],
            topic: OUT_TOPIC,
            publicBaseUrl: 'http://127.0.0.1:8080/data',
          },
        ],
      },
      plugins: [],
    };
    await writeFile(configPath, JSON.stringify(config, null, 2));
    return configPath;
  }

  async function start(configPath: string, logs: LogSink = createLogSink('info')) {
    const app = await openApp({ configPath, logTo: 'stderr', logLevel: 'silent' });
    const src = prepareSource(app.config.sources[0]!);
    const source = openSource(src, logs.log, { hostBudget: createHostBudget(), stateDir: app.config.stateDir });
    const o = { app, source };
    open.push(o);
    await source.watch?.(() => undefined, { signal: new AbortController().signal });
    // The cycle logs into the same sink: the engine's lines are what the operator reads.
    const cycle = async () =>
      runCycle(
        src,
        source,
        { ...(await app.cycleDeps()), log: logs.log },
        {
          signal: app.shutdown.signal,
          settleWithinCycle: false,
        },
      );
    return { ...o, app, logs, cycle };
  }

  async function stop(o: { app: App; source: Source }): Promise<void> {
    const i = open.indexOf(o);
    if (i >= 0) open.splice(i, 1);
    await o.source.close();
    await o.app.close();
  }

  async function serve(rel: string): Promise<Buffer> {
    const bytes = randomBytes(2000);
    const full = path.join(web.root, 'del', rel);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, bytes);
    return bytes;
  }

  function notification(rel: string, o: { bytes?: Buffer; deletion?: boolean; pubtime: string; id?: string }) {
    const href = `http://127.0.0.1:${web.port}/del/${rel}`;
    return JSON.stringify({
      id: o.id ?? randomUUID(),
      conformsTo: ['http://wis.wmo.int/spec/wnm/1/conf/core'],
      type: 'Feature',
      geometry: null,
      properties: {
        data_id: `xx-test/${rel}`,
        pubtime: o.pubtime,
        datetime: null,
        ...(o.bytes && {
          integrity: { method: 'sha512', value: createHash('sha512').update(o.bytes).digest('base64') },
        }),
      },
      links: o.deletion
        ? [{ href, rel: 'deletion' }]
        : [{ href, rel: 'canonical', type: 'application/bufr', length: o.bytes?.length }],
    });
  }
  const publish = (body: string) => publisher.publishAsync(`${TOPIC}/surface`, body, { qos: 1 });
  const landed = (configPath: string, rel: string) =>
    path.join(path.dirname(configPath), 'landing', 'wis2', 'xx-test', rel);

  async function gets(rel: string): Promise<number> {
    return (await web.accessLog()).filter((l) => l === `GET /del/${rel}`).length;
  }

  function why(configPath: string, p: string): Promise<string> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [path.join(REPO_ROOT, 'bin', 'poller.js'), 'why', p, '--config', configPath],
        { timeout: 30_000 },
        (_err, stdout, stderr) => resolve(stdout + stderr),
      );
    });
  }

  it('records a deletion of a fetched file, removes its copy, relays an official deletion, says an unknown one once', async () => {
    const configPath = await setup();
    const p = await start(configPath);
    const minuteAgo = Date.now() - 60_000;
    const a = await serve('d/a.bufr');
    const b = await serve('d/b.bufr');
    await publish(notification('d/a.bufr', { bytes: a, pubtime: new Date(minuteAgo).toISOString() }));
    await publish(notification('d/b.bufr', { bytes: b, pubtime: new Date(minuteAgo).toISOString() }));
    await waitFor(
      async () => {
        await p.cycle();
        return existsSync(landed(configPath, 'd/a.bufr')) && existsSync(landed(configPath, 'd/b.bufr'));
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'both files landed' },
    );

    // The deletion of a (twice: a re-delivery), and one of data this poller never had.
    const deletedAt = new Date(Date.now() - 5_000);
    deletedAt.setUTCMilliseconds(0);
    const delId = randomUUID();
    const deletion = notification('d/a.bufr', { deletion: true, pubtime: deletedAt.toISOString(), id: delId });
    await publish(deletion);
    await publish(deletion);
    await publish(notification('d/never.bufr', { deletion: true, pubtime: deletedAt.toISOString() }));
    // A file announced and deleted before poller fetched it: never fetched.
    const c = await serve('d/c.bufr');
    await publish(notification('d/c.bufr', { bytes: c, pubtime: new Date(minuteAgo).toISOString() }));
    await publish(notification('d/c.bufr', { deletion: true, pubtime: deletedAt.toISOString() }));

    const ledger = new SqliteLedger(path.join(path.dirname(configPath), 'ledger.db'));
    try {
      await waitFor(
        async () => {
          await p.cycle();
          const gone = (await ledger.files({ state: 'gone' })).map((f) => f.path);
          const unknown = p.logs.events('file.deletion_unknown').map((l) => l['path']);
          return (
            gone.includes('xx-test/d/a.bufr') &&
            (gone.includes('xx-test/d/c.bufr') || unknown.includes('xx-test/d/c.bufr')) &&
            unknown.includes('xx-test/d/never.bufr')
          );
        },
        { timeoutMs: 20_000, intervalMs: 100, what: 'the deletion recorded' },
      );
      const gone = (await ledger.files({ state: 'gone' })).find((f) => f.path === 'xx-test/d/a.bufr');
      expect(gone).toMatchObject({ path: 'xx-test/d/a.bufr', goneBy: `WIS2 notification ${delId}` });
      expect(gone?.goneMs).toBe(deletedAt.getTime());
      expect(existsSync(landed(configPath, 'd/a.bufr'))).toBe(false);
      expect(existsSync(landed(configPath, 'd/b.bufr'))).toBe(true);
      expect((await ledger.files({ state: 'processed' })).map((f) => f.path)).toEqual(['xx-test/d/b.bufr']);
      // Unknown: d/never.bufr, said once, at info, not as an error. d/c.bufr, deleted before its
      // fetch, is never fetched: unknown too when the deletion came before its listing, else gone.
      const unknown = p.logs.events('file.deletion_unknown').map((l) => l['path']);
      expect(unknown.filter((x) => x === 'xx-test/d/never.bufr')).toHaveLength(1);
      const cRows = await ledger.files({ path: 'xx-test/d/c.bufr' });
      expect(unknown.includes('xx-test/d/c.bufr') ? cRows : cRows.map((f) => f.state)).toEqual(
        unknown.includes('xx-test/d/c.bufr') ? [] : ['gone'],
      );
      expect(p.logs.lines.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
      expect(await gets('d/c.bufr')).toBe(0);
      expect(p.logs.events('file.gone_removed')).toHaveLength(1);

      // The gone event, relayed by the WNM sink as a deletion of what it announced.
      const events = await ledger.pendingEvents('relay', 100);
      const goneEvents = events.filter((e) => e.kind === 'gone');
      const goneA = goneEvents.filter((e) => e.fact.path === 'xx-test/d/a.bufr');
      expect(goneA).toHaveLength(1);
      expect(goneA[0]?.fact).toMatchObject({ path: 'xx-test/d/a.bufr', goneBy: `WIS2 notification ${delId}` });
      const sink = p.app.config.events?.sinks[0];
      if (!sink) throw new Error('no sink');
      const ctx = {
        centreId: 'xx-test',
        sink,
        sources: new Map(p.app.config.sources.map((s) => [s.name, s])),
      };
      const out = await formatEvent(goneA[0]!, ctx);
      if (isUnsendable(out)) throw new Error(out.reason);
      const msg = JSON.parse(out.body.toString()) as { properties: { data_id: string }; links: unknown[] };
      expect(msg.properties.data_id).toBe('xx-test/wis2/xx-test/d/a.bufr');
      expect(msg.links).toEqual([{ href: 'http://127.0.0.1:8080/data/wis2/xx-test/d/a.bufr', rel: 'deletion' }]);
      if (officialAvailable()) expect(officialProblems(out.body)).toEqual([]);

      // More cycles, then a restart: nothing is recorded or said again.
      for (let i = 0; i < 3; i++) await p.cycle();
      await stop(p);
      const again = await start(configPath);
      for (let i = 0; i < 3; i++) await again.cycle();
      expect(again.logs.events('file.deletion_unknown')).toEqual([]);
      expect(again.logs.events('file.gone')).toEqual([]);
      expect((await ledger.pendingEvents('relay', 100)).filter((e) => e.kind === 'gone')).toHaveLength(
        goneEvents.length,
      );
      await stop(again);

      const said = await why(configPath, 'xx-test/d/a.bufr');
      expect(said).toContain(
        `deleted upstream by WIS2 notification ${delId} at ${deletedAt.toISOString().replace('.000Z', 'Z')}`,
      );
    } finally {
      ledger.close();
    }
  }, 90_000);
});
