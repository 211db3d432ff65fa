/**
 * `node dist/bench/profile-top.js <file.cpuprofile> [n]`: the top functions by self time and the
 * top modules (files) by self time of a V8 CPU profile, as written with `BENCH_PROFILE=<dir>`.
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, nArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node dist/bench/profile-top.js <file.cpuprofile> [n]');
  process.exit(2);
}
const n = Number(nArg ?? 25);
const prof = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
const byId = new Map(prof.nodes.map((node) => [node.id, node]));
const selfUs = new Map<number, number>();
for (const [i, id] of prof.samples.entries()) selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
const totalUs = prof.endTime - prof.startTime;

const shortUrl = (url: string) => url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/') || '(native)';
const fnKey = (node: ProfileNode) =>
  `${node.callFrame.functionName || '(anonymous)'} ${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
const moduleKey = (node: ProfileNode) => {
  const url = shortUrl(node.callFrame.url);
  const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  return m ? `node_modules/${m[1]}` : url.startsWith('node:') ? 'node: (core)' : url;
};

function top(key: (node: ProfileNode) => string): Array<[string, number]> {
  const sums = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node) sums.set(key(node), (sums.get(key(node)) ?? 0) + us);
  }
  return [...sums].sort((a, b) => b[1] - a[1]).slice(0, n);
}

const pct = (us: number) => `${((us / totalUs) * 100).toFixed(1).padStart(5)} %`;
console.log(`profile: ${(totalUs / 1e6).toFixed(2)} s, ${prof.samples.length} samples`);
console.log('\nself time by function:');
for (const [k, us] of top(fnKey)) console.log(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
console.log('\nself time by module:');
for (const [k, us] of top(moduleKey)) console.log(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
