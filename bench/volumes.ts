/**
 * `npm run bench:volumes [volumes] [other-files] [--postgres]`: the cost of the volume stage on a
 * real ledger. Lands `volumes` x 7 INVAP-style member files (and `other-files` files that are not
 * members), then times the first stage runs (the catch-up: grouping, completing, claiming and
 * finishing every volume, no plugin) and one more with nothing new (what every cycle and timer
 * tick pays). With `--postgres` the same on a PostgreSQL ledger (a private server on 127.0.0.1, a
 * fresh database per repetition), interleaved S P S P (`BENCH_REPS`, default 3), with the medians
 * and the PostgreSQL / SQLite ratios of wall time and of poller's CPU; the server's CPU apart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { runVolumeStage, type VolumeStageDeps } from '../src/engine/volume-stage.js';
import type { Ledger, Observation } from '../src/ledger/ledger.js';
import { PostgresLedger } from '../src/ledger/postgres/postgres-ledger.js';
import { SqliteLedger } from '../src/ledger/sqlite/sqlite-ledger.js';
import type { PluginRunner } from '../src/plugins/runner.js';
import { volumeSpecOf } from '../src/volumes/spec.js';
import { type BenchPostgres, startBenchPostgres } from './lib/postgres.js';
import { median } from './lib/stats.js';

const MOMENTS = ['DBZH', 'TH', 'VRAD', 'ZDR', 'RHOHV', 'PHIDP', 'KDP'];
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const withPostgres = process.argv.includes('--postgres');
const volumes = Number(args[0] ?? 1000);
const others = Number(args[1] ?? 0);
const reps = Number(process.env['BENCH_REPS'] ?? 3);
const spec = volumeSpecOf({
  pattern: '(?<radar>RMA\\d+)_(?<strategy>\\d{4})_(?<scan>\\d{2})_(?<moment>[A-Z]+)_(?<time>\\d{8}T\\d{6}Z)',
  member: 'moment',
  expect: MOMENTS,
  minimum: 4,
  completeAfter: 180_000,
  reopenLate: false,
});

interface StageResult {
  backend: string;
  files: number;
  volumes: number;
  members: number;
  processed: number;
  runs: number;
  allStagesMs: number;
  perMemberUs: number;
  /** CPU seconds of this process during the catch-up. */
  cpuS: number;
  /**
   * CPU seconds of the PostgreSQL server over the whole repetition, the landing included (a
   * backend's CPU is counted when it exits, at the ledger's close); 0 for SQLite.
   */
  serverCpuS: number;
  idleStageMs: number;
}

/** Land the files, then run the stage until every volume is through, then once idle. */
async function measure(backend: string, ledger: Ledger): Promise<StageResult> {
  const now = Date.now();
  const observations: Observation[] = [];
  const entry = (p: string) => ({
    entry: {
      path: p,
      name: p,
      type: 'file' as const,
      sizeBytes: 100,
      mtimeMs: now - 7_200_000,
      mtimePrecision: 's' as const,
    },
  });
  for (let v = 0; v < volumes; v++) {
    const t = new Date(Date.UTC(2026, 0, 1) + v * 300_000).toISOString().replace(/[-:]/g, '').replace('.000', '');
    for (const m of MOMENTS) observations.push(entry(`RMA${v % 10}_0315_01_${m}_${t}.BUFR`));
  }
  for (let i = 0; i < others; i++) observations.push(entry(`other/x${i}.bufr`));
  const seen = await ledger.observe('s', observations, {
    nowMs: now,
    minAgeMs: 0,
    stableListings: 2,
    oldEnoughMs: 60_000,
  });
  const claimed = await ledger.claimForFetch(
    seen.ready.map((r) => r.id),
    'bench',
    now + 600_000,
    now,
  );
  await ledger.markFetched(
    claimed.map((c) => ({ id: c.id, localPath: `/landing/${c.path}`, done: true })),
    'bench',
    now,
  );
  // No volume plugin: the stage's own cost (the ledger work), not a plugin's.
  const runner = { plugins: [], volumePluginsFor: () => [] } as unknown as PluginRunner;
  const deps: VolumeStageDeps = {
    ledger,
    runner,
    log: pino({ level: 'silent' }),
    owner: 'bench',
    retryBaseMs: 1000,
    retryMaxMs: 1000,
  };
  const src = { name: 's', volumes: spec };
  const signal = new AbortController().signal;
  // A stage run is bounded (200 claim batches of 16): run it until everything is through.
  const cpu0 = process.cpuUsage();
  let t0 = performance.now();
  const totals = { members: 0, processed: 0, runs: 0 };
  for (let i = 0; i < 100; i++) {
    const r = await runVolumeStage(src, deps, signal);
    totals.runs++;
    totals.members += r.members;
    totals.processed += r.processed;
    if (r.members === 0 && r.processed === 0) break;
  }
  const firstMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  t0 = performance.now();
  await runVolumeStage(src, deps, signal);
  const idleMs = performance.now() - t0;
  return {
    backend,
    files: observations.length,
    volumes,
    ...totals,
    allStagesMs: Math.round(firstMs),
    perMemberUs: Math.round((firstMs * 1000) / Math.max(1, totals.members)),
    cpuS: Math.round((cpu.user + cpu.system) / 10_000) / 100,
    serverCpuS: 0,
    idleStageMs: Math.round(idleMs * 10) / 10,
  };
}

async function onSqlite(): Promise<StageResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-bench-volumes-'));
  const ledger = new SqliteLedger(path.join(dir, 'ledger.db'));
  try {
    return await measure('sqlite', ledger);
  } finally {
    await ledger.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function onPostgres(pg: BenchPostgres): Promise<StageResult> {
  const url = await pg.database();
  const server0 = pg.cpuS();
  const ledger = await PostgresLedger.open({ url, displayUrl: url });
  let r: StageResult;
  try {
    r = await measure('postgres', ledger);
  } finally {
    await ledger.close();
  }
  // The backends exit with the pool; give the postmaster a moment to reap them.
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { ...r, serverCpuS: Math.round((pg.cpuS() - server0) * 100) / 100 };
}

if (!withPostgres) console.log(JSON.stringify(await onSqlite()));
else {
  const pg = await startBenchPostgres();
  if (typeof pg === 'string') throw new Error(`bench:volumes --postgres: ${pg}`);
  try {
    const runs: StageResult[] = [];
    for (let i = 0; i < reps; i++) {
      for (const r of [await onSqlite(), await onPostgres(pg)]) {
        console.log(JSON.stringify(r));
        runs.push(r);
      }
    }
    const med = (backend: string, f: (r: StageResult) => number) =>
      median(runs.filter((r) => r.backend === backend).map(f));
    const ratio = (f: (r: StageResult) => number) => Math.round((med('postgres', f) / med('sqlite', f)) * 100) / 100;
    console.log(
      JSON.stringify({
        summary: 'postgres / sqlite, medians',
        reps,
        volumes,
        wallMs: { sqlite: med('sqlite', (r) => r.allStagesMs), postgres: med('postgres', (r) => r.allStagesMs) },
        wallRatio: ratio((r) => r.allStagesMs),
        cpuS: { sqlite: med('sqlite', (r) => r.cpuS), postgres: med('postgres', (r) => r.cpuS) },
        cpuRatio: ratio((r) => r.cpuS),
        serverCpuS: med('postgres', (r) => r.serverCpuS),
        idleStageMs: { sqlite: med('sqlite', (r) => r.idleStageMs), postgres: med('postgres', (r) => r.idleStageMs) },
      }),
    );
  } finally {
    await pg.stop();
  }
}
