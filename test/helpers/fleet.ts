/**
 * Several `poller run` processes of the built CLI on one PostgreSQL ledger and one real FTP server
 * (vsftpd), each with a config of its own: its `instance:` and, with a landing root per host, its
 * own landing directory. Their JSON log lines are collected; `close()` kills what still runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogLine } from './daemon.js';
import type { RealFtpServer } from './debian-ftp.js';
import { waitFor } from './wait-for.js';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'poller.js');

export interface FleetMember {
  readonly id: string;
  readonly landing: string;
  readonly configPath: string;
  child: ChildProcess;
  lines(): LogLine[];
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface FleetOptions {
  readonly dir: string;
  readonly ledger: string;
  readonly server: RealFtpServer;
  /** Everything of the config but landing, ledger, instance and the source's url/password. */
  readonly config: (id: string) => Record<string, unknown>;
  readonly source: Record<string, unknown>;
}

/** Writes the instance's config (landing `<dir>/<id>/landing`) and starts it; waits for `daemon.started`. */
export async function startMember(o: FleetOptions, id: string): Promise<FleetMember> {
  const home = path.join(o.dir, id);
  await mkdir(home, { recursive: true });
  const landing = path.join(home, 'landing');
  const configPath = path.join(home, 'poller.yaml');
  const config = {
    landing,
    ledger: o.ledger,
    instance: id,
    log: { level: 'info' },
    sources: [
      {
        name: 'radar',
        url: `ftp://${o.server.account.user}@127.0.0.1:${o.server.port}/`,
        password: '${FLEET_FTP_PASSWORD}',
        timezone: 'UTC',
        ...o.source,
      },
    ],
    ...o.config(id),
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const child = spawn(process.execPath, [CLI, 'run', '--config', configPath], {
    env: { ...process.env, FLEET_FTP_PASSWORD: o.server.account.password },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  const member: FleetMember = { id, landing, configPath, child, lines: () => lines, stderr: () => stderr, exited };
  await waitFor(() => lines.some((l) => l.event === 'daemon.started') || child.exitCode !== null, {
    timeoutMs: 30_000,
    what: `${id} started`,
  });
  if (child.exitCode !== null) throw new Error(`${id} exited at start: ${stderr.slice(0, 500)}`);
  return member;
}

/** SIGKILL what still runs (a test's cleanup). */
export async function killAll(members: readonly FleetMember[]): Promise<void> {
  for (const m of members) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
  await Promise.all(members.map((m) => m.exited));
}
