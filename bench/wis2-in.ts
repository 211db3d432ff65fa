/**
 * `npm run bench:wis2`: notifications in. N WIS2 Notification Messages are published to a real
 * mosquitto while the subscription is away (its persistent session queues them), files served
 * by a real nginx; then the WIS2 source starts and cycles run until every file has landed.
 * Figures: time until every notification is journaled (received, fsynced, acknowledged), and
 * until every file is landed and recorded in the ledger; poller's CPU seconds for the whole.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { openApp, prepareSource } from '../src/cli/app.js';
import { runCycle } from '../src/engine/cycle.js';
import { createHostBudget } from '../src/sources/ftp/host-budget.js';
import { openSource } from '../src/sources/index.js';
import type { Source } from '../src/sources/source.js';
import { startMosquitto } from '../test/helpers/brokers.js';
import { startWebServer } from '../test/helpers/http-servers.js';

const N = Number(process.env['BENCH_NOTIFICATIONS'] ?? 1000);
const SIZE = Number(process.env['BENCH_FILE_BYTES'] ?? 20_000);
const TOPIC = 'origin/a/wis2/xx-bench/data/core/weather';

const [broker, web] = await Promise.all([startMosquitto(), startWebServer('nginx-html')]);
const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-bench-wis2-'));
try {
  const configPath = path.join(dir, 'poller.yaml');
  writeFileSync(
    configPath,
    JSON.stringify({
      landing: './landing',
      ledger: './ledger.db',
      log: { level: 'warn' },
      sources: [
        {
          name: 'wis2',
          url: `wis2+mqtt://127.0.0.1:${broker.port}/${TOPIC}/#`,
          concurrency: 8,
          wis2: { clientId: 'poller-bench-wis2' },
        },
      ],
      plugins: [],
    }),
  );
  const openSubscription = async () => {
    const app = await openApp({ configPath, logTo: 'stderr', logLevel: 'silent' });
    const src = prepareSource(app.config.sources[0]!);
    const source = openSource(src, pino({ level: 'silent' }), {
      hostBudget: createHostBudget(),
      stateDir: app.config.stateDir,
    });
    await source.watch?.(() => undefined, { signal: app.shutdown.signal });
    return { app, src, source };
  };
  // Subscribe once, so that the broker keeps a session; then go away.
  const first = await openSubscription();
  await first.source.close();
  await first.app.close();

  const publisher = await mqtt.connectAsync(broker.url, { clientId: 'bench-publisher' });
  for (let i = 0; i < N; i++) {
    const rel = `d${i % 20}/f${i}.bufr`;
    const bytes = Buffer.alloc(SIZE, i % 251);
    mkdirSync(path.join(web.root, path.dirname(rel)), { recursive: true });
    writeFileSync(path.join(web.root, rel), bytes);
    const message = {
      id: randomUUID(),
      type: 'Feature',
      geometry: null,
      properties: {
        data_id: `xx-bench/${rel}`,
        pubtime: new Date(Date.now() - 1000).toISOString(),
        integrity: { method: 'sha512', value: createHash('sha512').update(bytes).digest('base64') },
      },
      links: [{ href: `http://127.0.0.1:${web.port}/${rel}`, rel: 'canonical', length: SIZE }],
    };
    await publisher.publishAsync(`${TOPIC}/surface`, JSON.stringify(message), { qos: 1 });
  }
  await publisher.endAsync();

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const { app, src, source } = await openSubscription();
  const signal = AbortSignal.timeout(300_000);
  for (;;) {
    signal.throwIfAborted();
    if ((await countPending(source, signal)) >= N) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const journaledS = (performance.now() - t0) / 1000;
  const deps = await app.cycleDeps();
  let fetched = 0;
  for (let cycles = 0; fetched < N && cycles < 1000; cycles++) {
    fetched += (await runCycle(src, source, deps, { signal, settleWithinCycle: false })).fetched;
  }
  const landedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const missing = Array.from({ length: N }, (_, i) => `d${i % 20}/f${i}.bufr`).filter(
    (rel) => !existsSync(path.join(dir, 'landing', 'wis2', 'xx-bench', rel)),
  ).length;
  await source.close();
  await app.close();
  if (missing > 0 || fetched !== N) throw new Error(`${fetched} fetched, ${missing} missing`);
  console.log(`WIS2 notifications in: ${N} notifications of ${SIZE}-byte files, queued while away`);
  console.log(
    `journaled (received, fsynced, acknowledged): ${journaledS.toFixed(2)} s, ${Math.round(N / journaledS)}/s`,
  );
  console.log(`landed and recorded: ${landedS.toFixed(2)} s, ${Math.round(N / landedS)} files/s`);
  console.log(`poller CPU: ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`);
} finally {
  await broker.destroy();
  await web.close();
  rmSync(dir, { recursive: true, force: true });
}

/** Notifications pending: a listing of the root rebuilds the tree, then each directory is counted. */
async function countPending(source: Source, signal: AbortSignal): Promise<number> {
  await source.list('', { signal });
  let n = 0;
  for (let d = 0; d < 20; d++) n += (await source.list(`xx-bench/d${d}`, { signal })).length;
  return n;
}
