/**
 * `npm run bench`: the side-by-side benchmarks. Each case prints medians, spreads and the ratio
 * poller/peer measured in the same run; results are written as JSON under bench/results/.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchRepoll } from './cases/repoll.js';
import { writeResult } from './lib/stats.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const only = process.argv.slice(2);
const want = (name: string) => only.length === 0 || only.includes(name);

const results: unknown[] = [];
if (want('repoll')) {
  const r = await benchRepoll({
    entries: Number(process.env['BENCH_REPOLL_ENTRIES'] ?? 100_000),
    reps: Number(process.env['BENCH_REPS'] ?? 3),
  });
  if (r) results.push(r);
}
const file = await writeResult(REPO_ROOT, 'bench', {
  date: new Date().toISOString(),
  host: { cpus: (await import('node:os')).cpus().length },
  results,
});
console.log(`results: ${path.relative(process.cwd(), file)}`);
