/**
 * Several `poller run` processes of the built CLI on one PostgreSQL ledger and one real FTP server
 * (vsftpd), each with a config of its own: its `instance:` and, with a landing root per host, its
 * own landing directory. Their JSON log lines are collected; `close()` kills what still runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { collectOutput, type LogLine } from './daemon.js';
import {
  createServerAccount,
  type RealFtpServer,
  realServerSupport,
  type ServerAccount,
  startVsftpd,
} from './debian-ftp.js';
import { makeTmpDir, type TmpDir } from './tmp-dir.js';
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
  const { lines, stderr, exited } = collectOutput(child);
  const member: FleetMember = { id, landing, configPath, child, lines, stderr, exited };
  await waitFor(() => lines().some((l) => l.event === 'daemon.started') || child.exitCode !== null, {
    timeoutMs: 30_000,
    what: `${id} started`,
  });
  if (child.exitCode !== null) throw new Error(`${id} exited at start: ${stderr().slice(0, 500)}`);
  return member;
}

/** SIGKILL what still runs (a test's cleanup). */
export async function killAll(members: readonly FleetMember[]): Promise<void> {
  for (const m of members) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
  await Promise.all(members.map((m) => m.exited));
}

/** vsftpd can run here; otherwise a visible notice (a failure under CI=true). */
export function vsftpdAvailable(what: string): boolean {
  const s = realServerSupport().vsftpd;
  if (s.available) return true;
  if (process.env['CI'] === 'true') throw new Error(`vsftpd is missing in CI: ${s.reason}`);
  console.warn(`NOTICE: ${what} skipped: ${s.reason}`);
  return false;
}

/** A test's scratch directory, vsftpd with a throwaway account, the instances and a ledger to read. */
export interface FleetSite {
  readonly tmp: TmpDir;
  readonly account: ServerAccount;
  readonly server: RealFtpServer;
  readonly members: FleetMember[];
  ledger?: PostgresLedger;
}

export async function openSite(prefix: string): Promise<FleetSite> {
  const tmp = await makeTmpDir(prefix);
  const account = await createServerAccount();
  const server = await startVsftpd({ account, tls: 'none' });
  return { tmp, account, server, members: [] };
}

/** Kill what runs, close the ledger, stop the server, remove the account and the scratch. */
export async function closeSite(site: FleetSite | undefined): Promise<void> {
  if (!site) return;
  await killAll(site.members.splice(0));
  await site.ledger?.close();
  await site.server.close();
  await site.account.remove();
  await site.tmp.remove();
}

/** Put a file on the server with this mtime (default an hour ago: old at first sight, no settling). */
export async function putFile(
  site: FleetSite,
  name: string,
  content: string | Uint8Array,
  mtime = new Date(Date.now() - 3_600_000),
): Promise<void> {
  const file = path.join(site.account.root, name);
  await writeFile(file, content);
  await utimes(file, mtime, mtime);
}
