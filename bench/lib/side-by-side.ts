/**
 * Side-by-side runs: every contender (poller and its peers) does the same job in the same
 * process conditions, interleaved A B C A B C..., each repetition into a fresh directory on the
 * same disk that is deleted afterwards. Each run is checked (file count, bytes, and for poller
 * the ledger) before it counts, so a fast but wrong run cannot win.
 */
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fmt, median, printTable, spreadPct } from './stats.js';
import { missingTools, runStraced, runTimed, type TimedCommand, type TimedRun } from './timed.js';

/** One tool doing the job. */
export interface Contender {
  name: string;
  /** The command for one repetition; `dest` is a fresh empty directory. */
  command(dest: string): TimedCommand | Promise<TimedCommand>;
  /** Throws when the run's output is wrong; may return extra figures (e.g. "newest landed at %"). */
  verify(dest: string, run: TimedRun): Promise<Record<string, number>>;
}

export interface SideBySideSpec {
  /** Case name, as `npm run bench <name>` selects it. */
  name: string;
  /** A short description of the job for the table. */
  label: string;
  /** What the rate counts: files or megabytes (10^6 bytes) per second. */
  unit: 'files/s' | 'MB/s' | 'entries/s';
  /** Files or megabytes in one run. */
  work: number;
  contenders: readonly Contender[];
  reps: number;
  /** Where each repetition's output directory is made (same disk for every tool). */
  scratch: string;
  /**
   * Contenders to run once more under `strace -f -c` (not timed) for a per-file syscall table;
   * skipped when strace is missing or BENCH_STRACE=0.
   */
  strace?: readonly string[];
}

/** Calls per unit of work (per file), by syscall, of one straced run. */
export type SyscallTable = Record<string, number>;

export interface ContenderResult {
  name: string;
  wallMs: number[];
  cpuS: number[];
  rssMb: number[];
  /** Work per second, one per repetition. */
  rate: number[];
  extra: Record<string, number[]>;
  /** Syscalls per unit of work from one straced run, when the case asked for it. */
  syscalls?: SyscallTable;
}

export interface SideBySideResult {
  case: string;
  label: string;
  unit: SideBySideSpec['unit'];
  work: number;
  reps: number;
  contenders: ContenderResult[];
}

/** Runs every contender `reps` times, interleaved, and returns the raw figures. */
export async function runSideBySide(spec: SideBySideSpec): Promise<SideBySideResult> {
  // BENCH_TOOLS=poller,lftp runs only those (for profiling; ratios need the peers). Naming poller
  // keeps the `baseline` build of an A/B (BENCH_BASELINE): it is the other poller, not a peer.
  const onlyTools = process.env['BENCH_TOOLS']?.split(',').filter(Boolean);
  if (onlyTools?.length) spec = { ...spec, contenders: spec.contenders.filter((c) => selected(onlyTools, c.name)) };
  const results: ContenderResult[] = spec.contenders.map((c) => ({
    name: c.name,
    wallMs: [],
    cpuS: [],
    rssMb: [],
    rate: [],
    extra: {},
  }));
  await mkdir(spec.scratch, { recursive: true });
  for (let rep = 1; rep <= spec.reps; rep++) {
    for (const [i, c] of spec.contenders.entries()) {
      const r = results[i] as ContenderResult;
      const dest = await mkdtemp(path.join(spec.scratch, `${c.name}-`));
      try {
        const run = await runTimed(await c.command(dest));
        if (run.exitCode !== 0)
          throw new Error(
            `${spec.name}: ${c.name} exited ${run.exitCode}: ${(run.stderr || run.stdout).trim().slice(-800)}`,
          );
        const extra = await c.verify(dest, run);
        r.wallMs.push(run.wallMs);
        r.cpuS.push(run.cpuS);
        r.rssMb.push(run.maxRssMb);
        r.rate.push(spec.work / (run.wallMs / 1000));
        for (const [k, v] of Object.entries(extra)) r.extra[k] = [...(r.extra[k] ?? []), v];
        const more = Object.entries(extra)
          .map(([k, v]) => ` ${k}=${fmt(v, 1)}`)
          .join('');
        console.log(
          `  ${spec.name} rep ${rep}/${spec.reps} ${c.name}: ${fmt(run.wallMs / 1000)} s, ` +
            `${fmt(spec.work / (run.wallMs / 1000), 1)} ${spec.unit}, CPU ${fmt(run.cpuS)} s, ` +
            `RSS ${fmt(run.maxRssMb, 0)} MB${more}`,
        );
      } finally {
        await rm(dest, { recursive: true, force: true });
      }
    }
  }
  const traced = spec.strace ?? [];
  if (traced.length > 0 && process.env['BENCH_STRACE'] !== '0' && missingTools(['strace']).length === 0) {
    for (const [i, c] of spec.contenders.entries()) {
      if (!traced.includes(c.name)) continue;
      const dest = await mkdtemp(path.join(spec.scratch, `${c.name}-strace-`));
      try {
        const counts = await runStraced(await c.command(dest));
        (results[i] as ContenderResult).syscalls = Object.fromEntries(
          Object.entries(counts).map(([k, n]) => [k, n / spec.work]),
        );
      } finally {
        await rm(dest, { recursive: true, force: true });
      }
    }
  }
  return {
    case: spec.name,
    label: spec.label,
    unit: spec.unit,
    work: spec.work,
    reps: spec.reps,
    contenders: results,
  };
}

/** Whether BENCH_TOOLS keeps a contender: named, or the baseline poller when poller is named. */
export function selected(tools: readonly string[], name: string): boolean {
  return tools.includes(name) || (name === 'baseline' && tools.includes('poller'));
}

/** The syscalls that matter most per file, side by side for the straced contenders. */
export function printSyscalls(result: SideBySideResult, top = 14): void {
  const traced = result.contenders.filter((c) => c.syscalls);
  if (traced.length === 0) return;
  const total = (t: SyscallTable) => Object.values(t).reduce((a, b) => a + b, 0);
  const names = new Set<string>();
  for (const c of traced)
    for (const [k] of Object.entries(c.syscalls as SyscallTable)
      .sort((a, b) => b[1] - a[1])
      .slice(0, top))
      names.add(k);
  const per = result.unit === 'files/s' ? 'file' : 'unit';
  const lead = (traced[0]?.syscalls ?? {}) as SyscallTable;
  console.log(`  ${result.case}: syscalls per ${per} (strace -f -c, one extra run each)`);
  printTable(
    ['syscall', ...traced.map((c) => c.name)],
    [
      ...[...names]
        .sort((a, b) => (lead[b] ?? 0) - (lead[a] ?? 0))
        .map((k) => [k, ...traced.map((c) => fmt((c.syscalls as SyscallTable)[k] ?? 0, 1))]),
      ['all', ...traced.map((c) => fmt(total(c.syscalls as SyscallTable), 1))],
    ],
  );
}

/** poller's median rate over the peer's (throughput: higher is better for poller). */
export function rateRatio(result: SideBySideResult, peer: string, of = 'poller'): number {
  const a = result.contenders.find((c) => c.name === of);
  const b = result.contenders.find((c) => c.name === peer);
  if (!a || !b) return Number.NaN;
  return median(a.rate) / median(b.rate);
}

/** poller's median CPU seconds over the peer's (lower is better for poller; the goal is <= 1). */
export function cpuRatio(result: SideBySideResult, peer: string, of = 'poller'): number {
  const a = result.contenders.find((c) => c.name === of);
  const b = result.contenders.find((c) => c.name === peer);
  if (!a || !b) return Number.NaN;
  return median(a.cpuS) / median(b.cpuS);
}

/** Contenders that are not peers: the library floor and an A/B's baseline build of poller. */
const NOT_PEERS = new Set(['floor', 'baseline']);

/** The peer with the highest median rate. */
export function fastestPeer(result: SideBySideResult, of = 'poller'): ContenderResult | undefined {
  return result.contenders
    .filter((c) => c.name !== of && !NOT_PEERS.has(c.name))
    .reduce<ContenderResult | undefined>(
      (best, c) => (!best || median(c.rate) > median(best.rate) ? c : best),
      undefined,
    );
}

/** Rows for the summary table: one per contender. */
export function tableRows(result: SideBySideResult): string[][] {
  // A case of poller against itself (no contender named poller, e.g. SQLite vs PostgreSQL):
  // the last contender's figures over each other's.
  const of = result.contenders.some((c) => c.name === 'poller') ? 'poller' : (result.contenders.at(-1)?.name ?? '');
  return result.contenders.map((c) => [
    result.case,
    c.name,
    fmt(median(c.wallMs) / 1000),
    fmt(spreadPct(c.wallMs), 0),
    `${fmt(median(c.rate), 1)} ${result.unit}`,
    fmt(median(c.cpuS)),
    result.unit === 'files/s' ? fmt((median(c.cpuS) / result.work) * 1000) : '',
    fmt(Math.max(...c.rssMb), 0),
    c.name === of ? '' : fmt(rateRatio(result, c.name, of)),
    c.name === of ? '' : fmt(cpuRatio(result, c.name, of)),
  ]);
}

export const TABLE_HEADERS = [
  'case',
  'tool',
  'median s',
  'spread %',
  'median rate',
  'CPU s',
  'CPU s/1000 files',
  'peak RSS MB',
  'poller/tool speed',
  'poller/tool CPU',
] as const;

export function printSideBySide(result: SideBySideResult): void {
  printTable(TABLE_HEADERS, tableRows(result));
  printSyscalls(result);
}

/** Files and bytes under `dir`, skipping dot-directories (poller's .partial and .state). */
export async function countTree(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const stack = [dir];
  for (let guard = 0; stack.length > 0 && guard < 1_000_000; guard++) {
    const d = stack.pop() as string;
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (!e.name.startsWith('.')) stack.push(p);
      } else if (e.isFile()) {
        files++;
        bytes += (await stat(p)).size;
      }
    }
  }
  return { files, bytes };
}

/** Throws unless `dir` holds exactly `files` files of `bytes` bytes in all. */
export async function expectTree(tool: string, dir: string, files: number, bytes: number): Promise<void> {
  const got = await countTree(dir);
  if (got.files !== files || got.bytes !== bytes)
    throw new Error(`${tool}: landed ${got.files} files / ${got.bytes} bytes, expected ${files} / ${bytes}`);
}

/** One goal of the issue, checked against this run's figures. */
export interface GoalCheck {
  goal: string;
  actual: string;
  met: boolean;
}

/** What a case hands back to `bench/run.ts`. */
export interface CaseOutcome {
  result: SideBySideResult;
  goals: GoalCheck[];
}

export function printGoals(goals: readonly GoalCheck[]): void {
  for (const g of goals) console.log(`  goal ${g.met ? 'MET   ' : 'MISSED'} ${g.goal}: ${g.actual}`);
}

/** The usual throughput goal: poller's median rate at least `min` x the fastest peer's. */
export function ratioGoal(result: SideBySideResult, min: number, peer?: string): GoalCheck {
  const other = peer ?? fastestPeer(result)?.name ?? '';
  const ratio = rateRatio(result, other);
  return {
    goal: `>= ${min}x ${peer ? other : `the faster peer (${other})`} in ${result.unit}`,
    actual: `${fmt(ratio)}x`,
    met: ratio >= min,
  };
}

/** poller's CPU seconds at most `max` x the peer's. */
export function cpuGoal(result: SideBySideResult, max: number, peer: string): GoalCheck {
  const ratio = cpuRatio(result, peer);
  return { goal: `CPU <= ${max}x ${peer}'s`, actual: `${fmt(ratio)}x`, met: ratio <= max };
}

/**
 * poller within `max` x the library floor (`floor`) in wall time and in CPU seconds: what poller
 * adds on top of the bare library. No goal when the case has no floor (BENCH_TOOLS left it out).
 */
export function floorGoal(result: SideBySideResult, max: number): GoalCheck[] {
  const p = result.contenders.find((c) => c.name === 'poller');
  const f = result.contenders.find((c) => c.name === 'floor');
  if (!p || !f) return [];
  const wall = median(p.wallMs) / median(f.wallMs);
  const cpu = median(p.cpuS) / median(f.cpuS);
  return [
    { goal: `wall <= ${max}x the library floor's`, actual: `${fmt(wall)}x`, met: wall <= max },
    { goal: `CPU <= ${max}x the library floor's`, actual: `${fmt(cpu)}x`, met: cpu <= max },
  ];
}

/** poller's peak RSS at most `maxMb`. */
export function rssGoal(result: SideBySideResult, maxMb: number): GoalCheck {
  const p = result.contenders.find((c) => c.name === 'poller');
  const rss = p ? Math.max(...p.rssMb) : Number.NaN;
  return { goal: `poller peak RSS <= ${maxMb} MB`, actual: `${fmt(rss, 0)} MB`, met: rss <= maxMb };
}
