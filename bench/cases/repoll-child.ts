/**
 * Child side of the re-poll benchmark. `bare`: basic-ftp alone connects and lists the directory.
 * `poller`: one poller cycle (connect, list, settle, ledger diff) against a ledger that already
 * has every file, as `poller run-once` does it. The `-warm` variants time the second listing /
 * cycle in one process, as the daemon re-polls: connection and ledger already open.
 */
import { Client } from 'basic-ftp';
import pLimit from 'p-limit';
import { pino } from 'pino';
import { buildConfig } from '../../src/config/load.js';
import { runCycle } from '../../src/engine/cycle.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import { PluginRunner } from '../../src/plugins/runner.js';
import { createHostBudget } from '../../src/sources/ftp/host-budget.js';
import { loadSourceKinds, openSource } from '../../src/sources/index.js';
import { walkSource } from '../../src/sources/walk.js';
import { GlobFilter } from '../../src/util/glob.js';
import { selfMeasure } from '../lib/child.js';

export interface RepollArgs {
  host: string;
  port: number;
  user: string;
  password: string;
  dir: string;
  /** A SQLite file, or a PostgreSQL URL. */
  ledger: string;
  landing: string;
}

async function openLedger(ledger: string): Promise<Ledger> {
  return /^postgres(ql)?:/.test(ledger)
    ? await PostgresLedger.open({ url: ledger, displayUrl: ledger })
    : new SqliteLedger(ledger);
}

async function bare(a: RepollArgs, warm: boolean): Promise<void> {
  let t0 = performance.now();
  const client = new Client(30_000);
  await client.access({ host: a.host, port: a.port, user: a.user, password: a.password });
  let list = await client.list(a.dir);
  if (warm) {
    t0 = performance.now();
    list = await client.list(a.dir);
  }
  client.close();
  console.log(JSON.stringify(selfMeasure(t0, { entries: list.length })));
}

async function poller(a: RepollArgs, mode: 'seed' | 'cold' | 'warm'): Promise<void> {
  let t0 = performance.now();
  let cpu0 = process.cpuUsage();
  const config = buildConfig(
    {
      landing: a.landing,
      ledger: a.ledger,
      sources: [
        {
          name: 'bench',
          url: `ftp://${a.user}@${a.host}:${a.port}/${a.dir}`,
          password: a.password,
          include: '*.bufr',
          stableListings: 1,
          maxConnections: 1,
        },
      ],
    },
    '/',
    {},
  );
  const src = config.sources[0]!;
  const log = pino({ level: 'warn' }, pino.destination(2));
  const ledger = await openLedger(a.ledger);
  await loadSourceKinds([src]);
  const source = openSource(src, log, { hostBudget: createHostBudget() });
  const signal = new AbortController().signal;
  if (mode === 'seed') {
    // The ledger learns every file as fetched and processed, without downloading.
    const walk = await walkSource(source, new GlobFilter(src.include), { signal, concurrency: 1 });
    const now = Date.now();
    const observed = await ledger.observe(
      src.name,
      walk.files.map((entry) => ({ entry })),
      {
        nowMs: now,
        minAgeMs: 0,
        stableListings: 1,
        oldEnoughMs: 0,
      },
    );
    const claimed = await ledger.claimForFetch(
      observed.ready.map((r) => r.id),
      'seed',
      now + 60_000,
      now,
    );
    await ledger.markFetched(
      claimed.map((c) => ({ id: c.id, localPath: '/dev/null' })),
      'seed',
      now,
    );
    const processing = await ledger.claimIdsForProcessing(
      claimed.map((c) => c.id),
      'seed',
      now + 60_000,
      now,
    );
    await ledger.finishProcessing(
      processing.map((p) => ({ id: p.id, outcomes: [] })),
      'seed',
      now,
    );
  }
  const runner = new PluginRunner({ plugins: [], log, stateDir: config.stateDir, shutdownSignal: signal });
  const deps = {
    ledger,
    runner,
    log,
    owner: 'bench',
    landingRoot: config.landing,
    transferLimit: pLimit(8),
    retryBaseMs: 1000,
    retryMaxMs: 1000,
  };
  let summary = await runCycle(src, source, deps, { signal, settleWithinCycle: false });
  if (mode === 'warm') {
    cpu0 = process.cpuUsage();
    t0 = performance.now();
    summary = await runCycle(src, source, deps, { signal, settleWithinCycle: false });
  }
  const cpu = process.cpuUsage(cpu0);
  await source.close();
  await ledger.close();
  const cpuS = (cpu.user + cpu.system) / 1e6;
  console.log(
    JSON.stringify(selfMeasure(t0, { listed: summary.listed, fetched: summary.fetched, new: summary.new, cpuS })),
  );
}

const [mode, json] = process.argv.slice(2);
const args = JSON.parse(json ?? '{}') as RepollArgs;
if (mode === 'bare' || mode === 'bare-warm') await bare(args, mode === 'bare-warm');
else await poller(args, mode === 'seed' ? 'seed' : mode === 'poller-warm' ? 'warm' : 'cold');
