/**
 * `npm run bench:events`: events/s of each sink against the real broker, on 127.0.0.1. N
 * landed files are written into a fresh ledger's outbox, then one dispatcher drains it; the
 * figures are wall time and the process's CPU seconds for the drain (the broker's CPU is not
 * counted). Rounds alternate the sinks (A B C A B C) and the median is reported.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { SinkConfig } from '../src/config/load.js';
import { Dispatcher } from '../src/events/dispatcher.js';
import { openSink } from '../src/events/sinks/index.js';
import { SqliteLedger } from '../src/ledger/sqlite/sqlite-ledger.js';
import { type Broker, startMosquitto, startNats, startRabbit } from '../test/helpers/brokers.js';

const N = Number(process.env['BENCH_EVENTS'] ?? 5000);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

function sinkConfig(name: string, type: SinkConfig['type'], url: string, extra: Partial<SinkConfig> = {}): SinkConfig {
  return {
    name,
    type,
    url,
    kinds: ['fetched'],
    sources: null,
    format: 'wnm',
    insecure: false,
    exchange: 'xpublic',
    stream: `BENCH${Date.now()}`,
    inlineContent: false,
    batch: 500,
    inFlight: 256,
    lagAlertMs: 60_000,
    timeoutMs: 10_000,
    ...extra,
  };
}

async function fillOutbox(file: string, sink: string): Promise<SqliteLedger> {
  const l = new SqliteLedger(file);
  l.setOutbox([{ sink, kinds: ['fetched'], sources: null }]);
  const now = Date.now();
  const obs = Array.from({ length: N }, (_v, i) => ({
    entry: {
      path: `vol/T_PAGA_${i}.bufr`,
      name: `T_PAGA_${i}.bufr`,
      type: 'file' as const,
      sizeBytes: 1000 + i,
      mtimeMs: now - 3_600_000,
      mtimePrecision: 's' as const,
    },
  }));
  const { ready } = await l.observe('radar', obs, { nowMs: now, minAgeMs: 0, stableListings: 2, oldEnoughMs: 60_000 });
  const claimed = await l.claimForFetch(
    ready.map((r) => r.id),
    'bench',
    now + 600_000,
    now,
  );
  await l.markFetched(
    claimed.map((r) => ({ id: r.id, localPath: `/x/${r.path}`, sha512: 'A'.repeat(88) })),
    'bench',
    now,
  );
  return l;
}

async function drainOnce(cfg: SinkConfig): Promise<{ wallS: number; cpuS: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-bench-events-'));
  const ledger = await fillOutbox(path.join(dir, 'ledger.db'), cfg.name);
  const sink = await openSink(cfg);
  const d = new Dispatcher({
    name: cfg.name,
    sink,
    ledger,
    format: { centreId: 'xx-bench', sink: cfg, sources: new Map() },
    log: pino({ level: 'silent' }),
    batch: cfg.batch,
    inFlight: cfg.inFlight,
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const left = await d.drain(Date.now() + 120_000);
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await d.stop();
  await ledger.close();
  rmSync(dir, { recursive: true, force: true });
  if (left !== 0 || d.stats.published !== N)
    throw new Error(`${cfg.name}: ${d.stats.published} sent, ${left} left (${d.stats.lastError})`);
  return { wallS, cpuS: (cpu.user + cpu.system) / 1e6 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const brokers: Broker[] = [];
try {
  const [mosq, nats, rabbit] = await Promise.all([startMosquitto(), startNats(), startRabbit()]);
  brokers.push(mosq, nats, rabbit);
  const fileDir = mkdtempSync(path.join(os.tmpdir(), 'poller-bench-file-'));
  const sinks = (round: number) => [
    sinkConfig('file', 'file', path.join(fileDir, `events-${round}.jsonl`)),
    sinkConfig('mqtt', 'mqtt', mosq.url),
    sinkConfig('nats', 'nats', nats.url, {
      stream: `BENCH${round}`,
      topic: `bench${round}/{centreId}`,
      lifecycleTopic: `benchlc${round}/{kind}`,
    }),
    sinkConfig('amqp', 'amqp', rabbit.url, { user: 'guest', password: 'guest' }),
  ];
  const results = new Map<string, Array<{ wallS: number; cpuS: number }>>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const cfg of sinks(r)) {
      const res = await drainOnce(cfg);
      results.set(cfg.name, [...(results.get(cfg.name) ?? []), res]);
    }
  }
  console.log(`events per sink: ${N} WIS2 notification messages, median of ${ROUNDS} rounds`);
  console.log('sink   events/s  wall s  cpu s (poller)');
  for (const [name, rs] of results) {
    const wall = median(rs.map((x) => x.wallS));
    const cpu = median(rs.map((x) => x.cpuS));
    console.log(
      `${name.padEnd(6)} ${String(Math.round(N / wall)).padStart(8)}  ${wall.toFixed(2).padStart(6)}  ${cpu.toFixed(2)}`,
    );
  }
  rmSync(fileDir, { recursive: true, force: true });
} finally {
  await Promise.all(brokers.map((b) => b.destroy()));
}
