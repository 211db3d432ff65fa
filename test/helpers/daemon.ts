/**
 * `poller run` as a child process for tests: its stdout JSON log lines are collected and can be
 * waited for; the config of an engine env can be edited before start or between reloads.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { EngineEnv } from './engine-env.js';
import { waitFor } from './wait-for.js';

export interface LogLine {
  event?: string;
  level: number;
  msg?: string;
  [key: string]: unknown;
}

export interface Daemon {
  child: ChildProcess;
  lines(): LogLine[];
  stderr(): string;
  /** Wait for a log line with this event (and matching `where`); returns it. */
  waitForEvent(event: string, where?: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code and signal once the child has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start `poller run` on the env's config with info logs; waits for `daemon.started`. */
export async function startDaemon(env: EngineEnv, extraArgs: string[] = []): Promise<Daemon> {
  const child = env.spawnCli(['run', '--log-level', 'info', ...extraArgs]);
  const { lines, stderr, exited } = collectOutput(child);
  const daemon: Daemon = {
    child,
    lines,
    stderr,
    exited,
    waitForEvent(event, where = () => true, timeoutMs = 8_000) {
      return waitFor(() => lines().find((l) => l.event === event && where(l)), {
        timeoutMs,
        what: `log event ${event} (stderr: ${stderr().slice(0, 300)})`,
      });
    },
  };
  await daemon.waitForEvent('daemon.started');
  return daemon;
}

/** A `poller` child's JSON log lines (stdout), its stderr, and its exit. */
export function collectOutput(child: ChildProcess): Pick<Daemon, 'lines' | 'stderr' | 'exited'> {
  const lines: LogLine[] = [];
  let buffered = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const p of parts) {
      if (!p.trim()) continue;
      try {
        lines.push(JSON.parse(p) as LogLine);
      } catch {
        lines.push({ level: 0, msg: p });
      }
    }
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { lines: () => lines, stderr: () => stderr, exited };
}

/** Read, change and write back the env's config (written as JSON, which is YAML too). */
export async function editConfig(
  env: EngineEnv,
  change: (config: Record<string, unknown>) => Record<string, unknown> | undefined,
): Promise<void> {
  const config = JSON.parse(await readFile(env.configPath, 'utf8')) as Record<string, unknown>;
  await writeFile(env.configPath, JSON.stringify(change(config) ?? config, null, 2));
}
