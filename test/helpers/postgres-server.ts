/**
 * A real PostgreSQL 15 server for tests: initialised once per test run (the first test file that
 * asks for it does `initdb` and `pg_ctl start`, under a lock directory that any number of vitest
 * workers race for), on 127.0.0.1 and a free port, fsync off. As root, `initdb` and `pg_ctl` run
 * as the `postgres` user (PostgreSQL refuses to run as root). `stopRunServer` stops it at the end.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const execFileAsync = promisify(execFile);

export const PG_BIN = process.env['POLLER_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  for (const bin of ['initdb', 'pg_ctl', 'postgres'])
    if (!existsSync(path.join(PG_BIN, bin)))
      return `${path.join(PG_BIN, bin)} not found; run scripts/install-postgres.sh`;
  return undefined;
}

/** Bounded wait for another worker's `initdb` + start (initdb takes a few seconds on a busy machine). */
const READY_WAIT_MS = 120_000;

function quote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Run a PostgreSQL binary, as the `postgres` user when we are root. */
async function pgRun(bin: string, args: string[]): Promise<string> {
  const file = path.join(PG_BIN, bin);
  const isRoot = process.getuid?.() === 0;
  const { stdout } = isRoot
    ? await execFileAsync('su', ['postgres', '-s', '/bin/sh', '-c', [file, ...args].map(quote).join(' ')], {
        timeout: 90_000,
      })
    : await execFileAsync(file, args, { timeout: 90_000 });
  return stdout;
}

interface Paths {
  base: string;
  data: string;
  log: string;
  lock: string;
  ready: string;
  failed: string;
}

function paths(runDir: string): Paths {
  const base = path.join(runDir, 'pg');
  return {
    base,
    data: path.join(base, 'data'),
    log: path.join(base, 'server.log'),
    lock: path.join(runDir, 'lock'),
    ready: path.join(runDir, 'ready.json'),
    failed: path.join(runDir, 'failed.txt'),
  };
}

/** The run's server (started on the first call of the run); resolves to its port. */
export async function ensureRunServer(runDir: string): Promise<number> {
  const p = paths(runDir);
  let winner = false;
  try {
    mkdirSync(p.lock);
    winner = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (winner) {
    try {
      const port = await startServer(runDir, p);
      writeFileSync(`${p.ready}.tmp`, JSON.stringify({ port }));
      // Rename: readers never see a half-written file.
      await import('node:fs/promises').then((fs) => fs.rename(`${p.ready}.tmp`, p.ready));
      return port;
    } catch (err) {
      writeFileSync(p.failed, String((err as Error).message));
      throw err;
    }
  }
  const deadline = Date.now() + READY_WAIT_MS;
  for (;;) {
    if (existsSync(p.ready)) return (JSON.parse(readFileSync(p.ready, 'utf8')) as { port: number }).port;
    if (existsSync(p.failed)) throw new Error(`PostgreSQL did not start: ${readFileSync(p.failed, 'utf8')}`);
    if (Date.now() > deadline) throw new Error(`PostgreSQL was not ready after ${READY_WAIT_MS} ms (${p.log})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startServer(runDir: string, p: Paths, extra: readonly string[] = []): Promise<number> {
  // The postgres user must reach the run directory (mkdtemp makes it 0700).
  chmodSync(runDir, 0o755);
  mkdirSync(p.base, { recursive: true });
  if (process.getuid?.() === 0) {
    const { stdout } = await execFileAsync('id', ['-u', 'postgres']);
    const { stdout: gid } = await execFileAsync('id', ['-g', 'postgres']);
    chownSync(p.base, Number(stdout.trim()), Number(gid.trim()));
  }
  await pgRun('initdb', [
    '-D',
    p.data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '-E',
    'UTF8',
    '--no-sync',
    '--no-instructions',
  ]);
  // Trust for the harness's own user; password (SCRAM) login for members of the role
  // `password_login`, so tests can check that a password reaches the server.
  const hba = path.join(p.data, 'pg_hba.conf');
  writeFileSync(hba, `host all +password_login 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, 'utf8')}`);
  return await startOnPort(p, await freePort(), extra);
}

/** `extra`: more `-c name=value` settings, after (so overriding) the defaults. */
async function startOnPort(p: Paths, port: number, extra: readonly string[] = []): Promise<number> {
  const options = [
    `-p ${port}`,
    `-k ${p.base}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=300',
    ...extra.map((x) => `-c ${x}`),
  ].join(' ');
  try {
    await pgRun('pg_ctl', ['-D', p.data, '-o', options, '-l', p.log, '-w', '-t', '60', 'start']);
  } catch (err) {
    const log = existsSync(p.log) ? readFileSync(p.log, 'utf8').slice(-2000) : '';
    throw new Error(`pg_ctl start failed: ${(err as Error).message}\n${log}`);
  }
  return port;
}

/** Stop the run's server and any private one still running (fast: open sessions are disconnected). */
export async function stopRunServer(runDir: string): Promise<void> {
  const dirs = [
    runDir,
    ...readdirSync(runDir)
      .filter((d) => d.startsWith('private-'))
      .map((d) => path.join(runDir, d)),
  ];
  for (const dir of dirs) {
    const p = paths(dir);
    if (existsSync(path.join(p.data, 'postmaster.pid')))
      await pgRun('pg_ctl', ['-D', p.data, '-m', 'fast', '-w', '-t', '60', 'stop']).catch(() => undefined);
  }
}

export interface PrivateServer {
  readonly port: number;
  /** Stop it (fast) and start it again on the same port and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

let privateCount = 0;

/**
 * A server of one test's own (for restarts, which the run's shared server must never see),
 * under the run directory so that the run's teardown stops it if the test could not.
 */
export async function startPrivateServer(runDir: string): Promise<PrivateServer> {
  const dir = path.join(runDir, `private-${process.pid}-${++privateCount}`);
  chmodSync(runDir, 0o755);
  mkdirSync(dir, { mode: 0o755 });
  const p = paths(dir);
  const port = await startServer(dir, p);
  const stop = async () => {
    if (existsSync(path.join(p.data, 'postmaster.pid')))
      await pgRun('pg_ctl', ['-D', p.data, '-m', 'fast', '-w', '-t', '60', 'stop']);
  };
  return {
    port,
    stop,
    start: async () => {
      await startOnPort(p, port);
    },
    restart: async () => {
      await stop();
      await startOnPort(p, port);
    },
  };
}

export interface ReplicatedPair {
  /** Port of the server that is primary at the start. */
  readonly primaryPort: number;
  /** Port of its streaming standby (read-only until promoted). */
  readonly standbyPort: number;
  /** The primary dies: `pg_ctl stop -m immediate` (no shutdown checkpoint, sessions cut). */
  killPrimary(): Promise<void>;
  /** `pg_ctl promote` the standby; resolves once it accepts writes. */
  promoteStandby(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A primary and a streaming standby of it (`pg_basebackup -R`), for failover tests. Replication
 * is synchronous (`synchronous_standby_names = '*'`, `synchronous_commit = on` on the primary):
 * a commit the primary acknowledged is on the standby, as in a failover setup that must not lose
 * a write. The standby runs without `synchronous_standby_names`, so once promoted it does not
 * wait for a standby of its own. Both live under the run directory: the run's teardown stops them.
 */
export async function startReplicatedPair(runDir: string): Promise<ReplicatedPair> {
  const dirOf = () => {
    const dir = path.join(runDir, `private-${process.pid}-${++privateCount}`);
    mkdirSync(dir, { mode: 0o755 });
    return dir;
  };
  chmodSync(runDir, 0o755);
  const primary = paths(dirOf());
  const primaryPort = await startServer(path.dirname(primary.base), primary, [
    'synchronous_commit=on',
    "synchronous_standby_names='*'",
    'wal_level=replica',
    'max_wal_senders=5',
  ]);
  const standby = paths(dirOf());
  mkdirSync(standby.base, { recursive: true });
  if (process.getuid?.() === 0) {
    const { stdout } = await execFileAsync('id', ['-u', 'postgres']);
    const { stdout: gid } = await execFileAsync('id', ['-g', 'postgres']);
    chownSync(standby.base, Number(stdout.trim()), Number(gid.trim()));
  }
  // -R: standby.signal and primary_conninfo; -X stream: the WAL of the copy comes along.
  await pgRun('pg_basebackup', [
    '-h',
    '127.0.0.1',
    '-p',
    String(primaryPort),
    '-U',
    'postgres',
    '-D',
    standby.data,
    '-R',
    '-X',
    'stream',
    '--no-sync',
  ]);
  const standbyPort = await startOnPort(standby, await freePort(), ['hot_standby=on']);
  await waitForStreaming(primaryPort);
  const ctl = (p: Paths, ...args: string[]) => pgRun('pg_ctl', ['-D', p.data, ...args]);
  const running = (p: Paths) => existsSync(path.join(p.data, 'postmaster.pid'));
  return {
    primaryPort,
    standbyPort,
    killPrimary: async () => {
      await ctl(primary, '-m', 'immediate', '-w', '-t', '60', 'stop');
    },
    promoteStandby: async () => {
      await ctl(standby, '-w', '-t', '60', 'promote');
    },
    stop: async () => {
      for (const p of [standby, primary])
        if (running(p)) await ctl(p, '-m', 'fast', '-w', '-t', '60', 'stop').catch(() => undefined);
    },
  };
}

/** Until the primary reports a standby streaming from it (bounded). */
async function waitForStreaming(primaryPort: number): Promise<void> {
  const { default: pg } = await import('pg');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const c = new pg.Client({ host: '127.0.0.1', port: primaryPort, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      const r = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'",
      );
      if ((r.rows[0]?.n ?? 0) > 0) return;
    } finally {
      await c.end();
    }
    if (Date.now() > deadline) throw new Error('the standby did not start streaming within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}
