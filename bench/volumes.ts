/**
 * `npm run bench:volumes [volumes] [other-files]`: the cost of the volume stage on a real SQLite
 * ledger. Lands `volumes` x 7 INVAP-style member files (and `other-files` files that are not
 * members), then times the first stage run (grouping, completing, claiming and finishing every
 * volume, no plugin) and a second one with nothing new (what every cycle and timer tick pays).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { runVolumeStage, type VolumeStageDeps } from '../src/engine/volume-stage.js';
import type { Observation } from '../src/ledger/ledger.js';
import { SqliteLedger } from '../src/ledger/sqlite/sqlite-ledger.js';
import type { PluginRunner } from '../src/plugins/runner.js';
import { volumeSpecOf } from '../src/volumes/spec.js';

const MOMENTS = ['DBZH', 'TH', 'VRAD', 'ZDR', 'RHOHV', 'PHIDP', 'KDP'];
const volumes = Number(process.argv[2] ?? 1000);
const others = Number(process.argv[3] ?? 0);
const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-bench-volumes-'));
const ledger = new SqliteLedger(path.join(dir, 'ledger.db'));
const spec = volumeSpecOf({
  pattern: '(?<radar>RMA\\d+)_(?<strategy>\\d{4})_(?<scan>\\d{2})_(?<moment>[A-Z]+)_(?<time>\\d{8}T\\d{6}Z)',
  member: 'moment',
  expect: MOMENTS,
  minimum: 4,
  completeAfter: 180_000,
  reopenLate: false,
});
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
t0 = performance.now();
await runVolumeStage(src, deps, signal);
const idleMs = performance.now() - t0;
console.log(
  JSON.stringify({
    files: observations.length,
    volumes,
    ...totals,
    allStagesMs: Math.round(firstMs),
    perMemberUs: Math.round((firstMs * 1000) / Math.max(1, totals.members)),
    idleStageMs: Math.round(idleMs * 10) / 10,
  }),
);
await ledger.close();
rmSync(dir, { recursive: true, force: true });
