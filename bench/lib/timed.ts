/**
 * Runs one command under GNU `/usr/bin/time -v`, so poller and its peers are measured the same
 * way: wall time (taken here, around the spawn), CPU seconds (user + system, children included)
 * and peak RSS of the largest process.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const GNU_TIME = '/usr/bin/time';

/** What one timed run gives. */
export interface TimedRun {
  /** Epoch ms just before the spawn: the origin for "landed at" percentages. */
  startedAtMs: number;
  wallMs: number;
  cpuS: number;
  maxRssMb: number;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface TimedCommand {
  command: string;
  args: readonly string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Kill the run after this long (a stuck peer must not stall the whole benchmark). */
  timeoutMs?: number;
}

/** Tools a case needs that are not on this machine; empty when all are there. */
export function missingTools(commands: readonly string[]): string[] {
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter);
  return commands.filter((c) => (c.startsWith('/') ? !existsSync(c) : !dirs.some((d) => existsSync(path.join(d, c)))));
}

/** Parse the numbers we need out of `time -v`'s report. */
export function parseGnuTime(report: string): { cpuS: number; maxRssMb: number } {
  const num = (label: string): number => {
    const m = new RegExp(`${label}:\\s*([0-9.]+)`).exec(report);
    return m ? Number(m[1]) : Number.NaN;
  };
  return {
    cpuS: num('User time \\(seconds\\)') + num('System time \\(seconds\\)'),
    maxRssMb: num('Maximum resident set size \\(kbytes\\)') / 1024,
  };
}

let seq = 0;

/** Spawns `time -v -o <report> command args...`, collecting stdout and stderr. */
export async function runTimed(cmd: TimedCommand): Promise<TimedRun> {
  const report = path.join(os.tmpdir(), `poller-bench-time-${process.pid}-${seq++}.txt`);
  const startedAtMs = Date.now();
  const t0 = performance.now();
  const child = spawn(GNU_TIME, ['-v', '-o', report, cmd.command, ...cmd.args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...cmd.env },
    ...(cmd.cwd !== undefined && { cwd: cmd.cwd }),
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  const timer = setTimeout(() => child.kill('SIGKILL'), cmd.timeoutMs ?? 600_000);
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  const wallMs = performance.now() - t0;
  clearTimeout(timer);
  const text = await readFile(report, 'utf8').catch(() => '');
  await rm(report, { force: true });
  const { cpuS, maxRssMb } = parseGnuTime(text);
  return {
    startedAtMs,
    wallMs,
    cpuS,
    maxRssMb,
    exitCode,
    stdout: Buffer.concat(out).toString(),
    stderr: Buffer.concat(err).toString(),
  };
}

/**
 * Runs one command under `strace -f -c` (every thread and child) and returns the calls per
 * syscall. Not timed: strace slows every call down.
 */
export async function runStraced(cmd: TimedCommand): Promise<Record<string, number>> {
  const report = path.join(os.tmpdir(), `poller-bench-strace-${process.pid}-${seq++}.txt`);
  const child = spawn('strace', ['-f', '-c', '-o', report, cmd.command, ...cmd.args], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, ...cmd.env },
    ...(cmd.cwd !== undefined && { cwd: cmd.cwd }),
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), cmd.timeoutMs ?? 600_000);
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', () => resolve());
  });
  clearTimeout(timer);
  const text = await readFile(report, 'utf8').catch(() => '');
  await rm(report, { force: true });
  return parseStraceSummary(text);
}

/** `strace -c`'s table: "% time seconds usecs/call calls [errors] syscall" rows. */
export function parseStraceSummary(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 5 || !/^[0-9.]+$/.test(parts[0] ?? '')) continue;
    const name = parts[parts.length - 1] as string;
    if (name === 'total') continue;
    out[name] = Number(parts[3]);
  }
  return out;
}
