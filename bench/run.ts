/**
 * `npm run bench [case...]`: the side-by-side benchmarks. Each case prints medians, spreads and
 * the ratio poller/peer measured in the same run; results are written as JSON under
 * bench/results/, and a Markdown table of the run is printed last. Cases: repoll, many,
 * big-ftp, big-ftps, big-sftp, catchup, plugins (bufr plugin in workers vs in process), http-many,
 * http-repoll, pg (SQLite vs PostgreSQL ledger, and the 3-instance speed-up; pg-many and pg-speedup run one part), pg-repoll (the re-poll on both ledgers). Knobs: BENCH_REPS (default 3), BENCH_SCALE (default 1: multiplies file counts and the
 * big file's size), BENCH_REPOLL_ENTRIES (default 100000), BENCH_HTTP_REPOLL_ENTRIES (default 10000).
 * Install the servers and peers first: `bash scripts/install-bench-tools.sh`.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCatchUp } from './cases/catch-up.js';
import { benchHttpMany, benchHttpRepoll } from './cases/http.js';
import { benchManyFiles } from './cases/many-files.js';
import { benchPostgres } from './cases/pg.js';
import { benchPgRepoll } from './cases/pg-repoll.js';
import { benchPluginIsolation } from './cases/plugin-isolation.js';
import { benchRepoll } from './cases/repoll.js';
import { benchSingleStream, SINGLE_STREAM_CASES, type SingleStreamCase } from './cases/single-stream.js';
import { type CaseOutcome, TABLE_HEADERS, tableRows } from './lib/side-by-side.js';
import { writeResult } from './lib/stats.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// The soak is a long run of its own (a simulated week), never part of the side-by-side set.
if (process.argv[2] === 'soak') {
  const { benchSoak } = await import('./soak.js');
  await benchSoak();
  process.exit(0);
}
if (process.argv[2] === 'local-tree') {
  const { benchLocalTree } = await import('./local-tree.js');
  await benchLocalTree();
  process.exit(0);
}
const ALL = [
  'repoll',
  'many',
  ...SINGLE_STREAM_CASES,
  'catchup',
  'plugins',
  'http-many',
  'http-repoll',
  'pg',
  'pg-many',
  'pg-speedup',
  'pg-repoll',
];
const only = process.argv.slice(2);
for (const name of only) {
  if (!ALL.includes(name)) {
    console.error(`unknown case "${name}"; cases: ${ALL.join(', ')}`);
    process.exit(2);
  }
}
const want = (name: string) => only.length === 0 || only.includes(name);
const reps = Math.max(1, Number(process.env['BENCH_REPS'] ?? 3));
const scale = Number(process.env['BENCH_SCALE'] ?? 1);
const startedMs = Date.now();
console.log(
  `bench: reps ${reps}, scale ${scale}, load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);

const results: unknown[] = [];
const outcomes: CaseOutcome[] = [];
const failures: string[] = [];
const extraGoals: string[] = [];

async function attempt(name: string, run: () => Promise<CaseOutcome | CaseOutcome[] | undefined>): Promise<void> {
  try {
    const out = await run();
    for (const o of out === undefined ? [] : Array.isArray(out) ? out : [out]) {
      outcomes.push(o);
      results.push({ ...o.result, goals: o.goals });
    }
  } catch (err) {
    console.error(`${name}: FAILED: ${err instanceof Error ? err.message : String(err)}`);
    failures.push(name);
  }
}

if (want('repoll')) {
  try {
    const r = await benchRepoll({ entries: Number(process.env['BENCH_REPOLL_ENTRIES'] ?? 100_000), reps });
    if (r) results.push(r);
    if (r?.cli) {
      const poller = r.cli.contenders.find((c) => c.name === 'poller');
      const rss = Math.max(...(poller?.rssMb ?? [Number.NaN]), ...(r.measures['poller']?.rssMb ?? []));
      outcomes.push({
        result: r.cli,
        goals: [
          {
            goal: 'poller cycle <= 1.15x the bare basic-ftp listing (cold, in process)',
            actual: `${r.ratioCold.toFixed(2)}x (warm ${r.ratioWarm.toFixed(2)}x)`,
            met: r.ratioCold <= r.goal.ratio,
          },
          {
            goal: '`poller run-once` <= 1.15x `curl` LIST (wall time)',
            actual: `${(r.ratioCliCurl ?? Number.NaN).toFixed(2)}x`,
            met: (r.ratioCliCurl ?? Number.POSITIVE_INFINITY) <= r.goal.ratio,
          },
          { goal: 'poller peak RSS <= 150 MB', actual: `${rss.toFixed(0)} MB`, met: rss <= r.goal.rssMb },
        ],
      });
    }
  } catch (err) {
    console.error(`repoll: FAILED: ${err instanceof Error ? err.message : String(err)}`);
    failures.push('repoll');
  }
}
if (want('many')) await attempt('many', () => benchManyFiles({ reps, scale }));
const streams = SINGLE_STREAM_CASES.filter(want) as SingleStreamCase[];
if (streams.length > 0) await attempt(streams.join(','), () => benchSingleStream({ reps, scale, cases: streams }));
if (want('catchup')) await attempt('catchup', () => benchCatchUp({ reps, scale }));
if (want('plugins')) {
  try {
    const r = await benchPluginIsolation({ reps, scale });
    if (r) results.push(r);
  } catch (err) {
    console.error(`plugins: FAILED: ${err instanceof Error ? err.message : String(err)}`);
    failures.push('plugins');
  }
}
if (want('http-many')) await attempt('http-many', () => benchHttpMany({ reps, scale }));
if (want('http-repoll')) {
  await attempt('http-repoll', () =>
    benchHttpRepoll({ reps, entries: Number(process.env['BENCH_HTTP_REPOLL_ENTRIES'] ?? 10_000) }),
  );
}

// `pg` is both of its parts; `pg-many` or `pg-speedup` alone runs one.
const pgParts = { many: want('pg') || only.includes('pg-many'), speedUp: want('pg') || only.includes('pg-speedup') };
if (pgParts.many || pgParts.speedUp) await attempt('pg', () => benchPostgres({ reps, scale, parts: pgParts }));
if (want('pg-repoll')) {
  try {
    const r = await benchPgRepoll({ reps, entries: Number(process.env['BENCH_REPOLL_ENTRIES'] ?? 100_000) });
    if (r) {
      results.push(r);
      extraGoals.push(
        `pg-repoll: PostgreSQL no-change re-poll within 1.2x of SQLite's: run-once ${r.ratioCold.toFixed(2)}x, daemon ${r.ratioWarm.toFixed(2)}x (${Math.max(r.ratioCold, r.ratioWarm) <= r.goal.ratio ? 'met' : 'MISSED'})`,
      );
    }
  } catch (err) {
    console.error(`pg-repoll: FAILED: ${err instanceof Error ? err.message : String(err)}`);
    failures.push('pg-repoll');
  }
}

// One case alone (`npm run bench pg`) writes a file of its own, beside the full set's.
const file = await writeResult(REPO_ROOT, only.length === 1 ? `bench-${only[0]}` : 'bench', {
  date: new Date().toISOString(),
  host: { cpus: os.cpus().length, loadAverageAtEnd: os.loadavg() },
  reps,
  scale,
  durationS: (Date.now() - startedMs) / 1000,
  results,
});

if (outcomes.length > 0) {
  console.log('\nMarkdown (bench/README.md):\n');
  console.log(`| ${TABLE_HEADERS.join(' | ')} |`);
  console.log(`|${TABLE_HEADERS.map(() => '---').join('|')}|`);
  for (const o of outcomes) for (const row of tableRows(o.result)) console.log(`| ${row.join(' | ')} |`);
  console.log('');
  for (const o of outcomes)
    for (const g of o.goals) console.log(`- ${o.result.case}: ${g.goal}: ${g.actual} (${g.met ? 'met' : 'MISSED'})`);
}
for (const g of extraGoals) console.log(`- ${g}`);
console.log(`\nresults: ${path.relative(process.cwd(), file)} (${((Date.now() - startedMs) / 60_000).toFixed(1)} min)`);
if (failures.length > 0) process.exitCode = 1;
