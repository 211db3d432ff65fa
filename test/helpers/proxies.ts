import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

/**
 * Real proxies for tests: Debian's squid (HTTP CONNECT and plain HTTP proxying, Basic auth by
 * its ncsa helper) and dante-server (SOCKS5, without auth or with username/password against a
 * throw-away system user), on 127.0.0.1 high ports with throw-away configs. Each proxy's own log
 * is what a test reads to prove traffic went through it. Both need root (squid drops to its
 * `proxy` user; dante checks passwords in /etc/shadow).
 */

const SQUID = process.env['POLLER_TEST_SQUID'] ?? '/usr/sbin/squid';
const DANTED = process.env['POLLER_TEST_DANTED'] ?? '/usr/sbin/danted';
const START_TIMEOUT_MS = 20_000;

export interface ProxyAvailability {
  readonly available: boolean;
  readonly reason: string;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Whether squid and danted can run here, and why not (skip locally, fail when CI=true). */
export function proxyAvailability(): ProxyAvailability {
  for (const [bin, pkg] of [
    [SQUID, 'squid'],
    [DANTED, 'dante-server'],
  ] as const) {
    try {
      accessSync(bin, fsConstants.X_OK);
    } catch {
      return { available: false, reason: `${bin} not found (bash scripts/install-test-servers.sh installs ${pkg})` };
    }
  }
  if (!isRoot()) return { available: false, reason: 'squid and danted tests need root' };
  return { available: true, reason: '' };
}

export interface RunningProxy {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `http://127.0.0.1:port` or `socks5://127.0.0.1:port`, without credentials. */
  readonly url: string;
  /** With auth: the user and password the proxy accepts. */
  readonly user?: string;
  readonly password?: string;
  /** The proxy's own log of connections (squid access.log, danted's log). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface ProxyOptions {
  /** Require a user and password (random, returned on the proxy). */
  auth?: boolean;
  /** Refuse every connection by rule (squid: 403, dante: SOCKS "not allowed"). */
  deny?: boolean;
}

async function stopChild(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  await fs.rm(dir, { recursive: true, force: true });
}

async function readOr(file: string): Promise<string> {
  return await fs.readFile(file, 'utf8').catch(() => '');
}

/** Squid listening on 127.0.0.1; CONNECT allowed to every port (the tests' servers use high ones). */
export async function startSquid(opts: ProxyOptions = {}): Promise<RunningProxy> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'poller-squid-'));
  await fs.chmod(dir, 0o777); // squid runs as its `proxy` user and writes its logs here
  const port = await freePort();
  const user = 'poller-proxy';
  const password = randomBytes(9).toString('base64url');
  const lines = [
    `http_port 127.0.0.1:${port}`,
    `pid_filename ${dir}/squid.pid`,
    `access_log stdio:${dir}/access.log squid`,
    `cache_log ${dir}/cache.log`,
    'cache_store_log none',
    'cache deny all',
    'cache_mem 8 MB',
    `coredump_dir ${dir}`,
    'shutdown_lifetime 0 seconds',
    'logfile_rotate 0',
    'netdb_filename none',
    'pinger_enable off',
    'dns_v4_first on',
    'strip_query_terms off',
  ];
  if (opts.auth) {
    const hash = execFileSync('openssl', ['passwd', '-apr1', password], { encoding: 'utf8' }).trim();
    await fs.writeFile(path.join(dir, 'passwd'), `${user}:${hash}\n`, { mode: 0o644 });
    lines.push(
      `auth_param basic program /usr/lib/squid/basic_ncsa_auth ${dir}/passwd`,
      'auth_param basic realm poller-test',
    );
    lines.push('acl authed proxy_auth REQUIRED', 'http_access allow authed');
  }
  lines.push(opts.deny ? 'http_access deny all' : opts.auth ? 'http_access deny all' : 'http_access allow all');
  await fs.writeFile(path.join(dir, 'squid.conf'), `${lines.join('\n')}\n`);
  const child = spawn(SQUID, ['-N', '-f', path.join(dir, 'squid.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const cacheLog = path.join(dir, 'cache.log');
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`squid exited: ${stderr}${await readOr(cacheLog)}`);
        return (await readOr(cacheLog)).includes('Accepting HTTP Socket connections');
      },
      { timeoutMs: START_TIMEOUT_MS, what: 'squid to listen' },
    );
  } catch (err) {
    await stopChild(child, dir);
    throw err;
  }
  return {
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,
    ...(opts.auth && { user, password }),
    log: () => readOr(path.join(dir, 'access.log')),
    stop: () => stopChild(child, dir),
  };
}

/** danted on 127.0.0.1, SOCKS5 CONNECT only; with auth, a throw-away system user. */
export async function startDante(opts: ProxyOptions = {}): Promise<RunningProxy> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'poller-dante-'));
  const port = await freePort();
  const logFile = path.join(dir, 'danted.log');
  let user: string | undefined;
  let password: string | undefined;
  if (opts.auth) {
    user = `pxy${randomBytes(3).toString('hex')}`;
    password = randomBytes(9).toString('base64url');
    execFileSync('useradd', ['-M', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', user], { stdio: 'ignore' });
    execFileSync('chpasswd', [], { input: `${user}:${password}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
  }
  const verdict = opts.deny ? 'block' : 'pass';
  const conf = [
    `logoutput: ${logFile}`,
    `internal: 127.0.0.1 port = ${port}`,
    'external: 127.0.0.1',
    `socksmethod: ${opts.auth ? 'username' : 'none'}`,
    'clientmethod: none',
    'user.privileged: root',
    'user.unprivileged: nobody',
    'client pass {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  log: error connect disconnect\n}',
    `socks ${verdict} {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n  log: error connect disconnect\n}`,
  ];
  await fs.writeFile(path.join(dir, 'danted.conf'), `${conf.join('\n')}\n`);
  const child = spawn(DANTED, ['-f', path.join(dir, 'danted.conf'), '-N', '2', '-p', path.join(dir, 'danted.pid')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const removeUser = (): void => {
    if (user !== undefined) {
      try {
        execFileSync('userdel', [user], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`danted exited: ${stderr}${await readOr(logFile)}`);
        return (await readOr(logFile)).includes('running');
      },
      { timeoutMs: START_TIMEOUT_MS, what: 'danted to listen' },
    );
  } catch (err) {
    await stopChild(child, dir);
    removeUser();
    throw err;
  }
  return {
    host: '127.0.0.1',
    port,
    url: `socks5://127.0.0.1:${port}`,
    ...(user !== undefined && { user }),
    ...(password !== undefined && { password }),
    log: () => readOr(logFile),
    stop: async () => {
      await stopChild(child, dir);
      removeUser();
    },
  };
}
