/**
 * Real FTP servers for tests: vsftpd (plain, explicit FTPS, implicit FTPS) and pure-ftpd (MLSD),
 * started on 127.0.0.1 high ports with throwaway configs, certificates and a throwaway system
 * user. `scripts/install-test-servers.sh` installs them; `realServerSupport()` says what is there.
 * Needs root, or passwordless sudo. Each server runs in its own process group, and `close()`
 * stops exactly that group.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, freePortRange } from './free-port.js';
import { makeTestCertificate, type TestCertificate } from './tls-cert.js';
import { makeTmpDir, type TmpDir } from './tmp-dir.js';
import { waitFor } from './wait-for.js';

const run = promisify(execFile);

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Debian's paths; the env variables point elsewhere (or at nothing, to try the skip path). */
const { POLLER_TEST_VSFTPD, POLLER_TEST_PURE_FTPD } = process.env;
const VSFTPD = POLLER_TEST_VSFTPD ?? '/usr/sbin/vsftpd';
const PURE_FTPD =
  POLLER_TEST_PURE_FTPD ?? path.join(REPO_ROOT, '.cache', 'servers', 'pure-ftpd', 'usr', 'sbin', 'pure-ftpd');

export interface ServerSupport {
  available: boolean;
  /** Why not, when not available. */
  reason?: string;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

let sudoChecked: boolean | undefined;
function canSudo(): boolean {
  if (sudoChecked === undefined) {
    try {
      execFileSync('sudo', ['-n', 'true'], { stdio: 'ignore' });
      sudoChecked = true;
    } catch {
      sudoChecked = false;
    }
  }
  return sudoChecked;
}

/** A privileged command line: as is for root, through `sudo -n` otherwise. */
function privileged(command: string, args: string[]): [string, string[]] {
  return isRoot() ? [command, args] : ['sudo', ['-n', command, ...args]];
}

/** Which real servers can run here (binaries present; root or passwordless sudo for the system user). */
export function realServerSupport(): { vsftpd: ServerSupport; pureFtpd: ServerSupport } {
  const check = (binary: string): ServerSupport => {
    try {
      accessSync(binary, constants.X_OK);
    } catch {
      return { available: false, reason: `${binary} not found; run scripts/install-test-servers.sh` };
    }
    if (!isRoot() && !canSudo()) return { available: false, reason: 'needs root or passwordless sudo' };
    return { available: true };
  };
  return { vsftpd: check(VSFTPD), pureFtpd: check(PURE_FTPD) };
}

/** A throwaway system account whose home is the served tree. */
export interface ServerAccount {
  readonly user: string;
  readonly password: string;
  /**
   * Served directory (the account's home and chroot). It stays owned by the test process: files
   * written there with default modes (644, dirs 755) are readable by the account.
   */
  readonly root: string;
  /** Makes everything under `root` readable by the account (chmod -R a+rX), for files written with tighter modes. */
  own(): Promise<void>;
  remove(): Promise<void>;
}

/** Creates a system user (useradd -M, chpasswd) with a fresh tmp dir as home. */
export async function createServerAccount(): Promise<ServerAccount> {
  const tmp = await makeTmpDir('poller-real-ftp-');
  await chmod(tmp.path, 0o755);
  const user = `pt${randomBytes(4).toString('hex')}`;
  const password = `Pw-${randomBytes(9).toString('base64url')}`;
  try {
    await runLocked(...privileged('useradd', ['-M', '-d', tmp.path, '-s', '/bin/sh', user]));
    await runLocked(...privileged('sh', ['-c', `printf '%s:%s\\n' "$1" "$2" | chpasswd`, 'chpasswd', user, password]));
  } catch (err) {
    await runLocked(...privileged('userdel', [user])).catch(() => undefined);
    await tmp.remove();
    throw err;
  }
  return {
    user,
    password,
    root: tmp.path,
    async own() {
      await run('chmod', ['-R', 'a+rX', tmp.path]);
    },
    async remove() {
      await runLocked(...privileged('userdel', [user])).catch(() => undefined);
      await tmp.remove();
    },
  };
}

/**
 * useradd/chpasswd/userdel fail with "cannot lock /etc/passwd" while another process (another
 * test file) edits it: retry a few times.
 */
async function runLocked(command: string, args: string[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await run(command, args);
      return;
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? '');
      if (attempt >= 10 || !/lock/i.test(stderr)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

export type RealTlsMode = 'none' | 'explicit' | 'implicit';

/** One running real server. */
export interface RealFtpServer {
  readonly kind: 'vsftpd' | 'pure-ftpd';
  readonly host: string;
  readonly port: number;
  readonly tlsMode: RealTlsMode;
  /** Present when TLS is offered. */
  readonly certificate?: TestCertificate;
  /** vsftpd's transfer log (xferlog format), a witness of what was really sent. */
  readonly xferlogPath?: string;
  readonly account: ServerAccount;
  close(): Promise<void>;
}

export interface VsftpdOptions {
  account: ServerAccount;
  /** 'explicit' allows plain and AUTH TLS clients; 'implicit' is TLS from the first byte. */
  tls: RealTlsMode;
  /** vsftpd `max_per_ip`: connections past it get "421 There are too many connections". */
  maxPerIp?: number;
  /** Only this TLS version is spoken (the server's OpenSSL is configured so). Default: what OpenSSL offers (1.2 and 1.3). */
  tlsVersion?: TlsVersion;
}

/** A TLS version a test pins a server to. */
export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/**
 * An OpenSSL config that pins the protocol version of every TLS context of the process that
 * loads it (vsftpd 3.0.3 and pure-ftpd have no setting of their own for TLS 1.3). Returns the
 * environment to start the server with.
 */
async function pinTlsVersion(dir: string, version: TlsVersion | undefined): Promise<NodeJS.ProcessEnv | undefined> {
  if (version === undefined) return undefined;
  const file = path.join(dir, 'openssl.cnf');
  await writeFile(
    file,
    [
      'openssl_conf = poller_test',
      '[poller_test]',
      'ssl_conf = poller_ssl',
      '[poller_ssl]',
      'system_default = poller_tls',
      '[poller_tls]',
      `MinProtocol = ${version}`,
      `MaxProtocol = ${version}`,
      '',
    ].join('\n'),
  );
  return { ...process.env, OPENSSL_CONF: file };
}

/** Starts vsftpd 3 in the foreground with a private config. */
export async function startVsftpd(opts: VsftpdOptions): Promise<RealFtpServer> {
  const work = await makeTmpDir('poller-vsftpd-');
  const emptyDir = path.join(work.path, 'empty');
  await mkdir(emptyDir, { mode: 0o755 });
  await chmod(work.path, 0o755);
  const port = await freePort();
  const pasv = await freePortRange(30);
  const certificate = opts.tls !== 'none' ? await makeTestCertificate(work.path) : undefined;
  const xferlogPath = path.join(work.path, 'xferlog');
  const lines = [
    'listen=YES',
    'listen_ipv6=NO',
    'listen_address=127.0.0.1',
    `listen_port=${port}`,
    'background=NO',
    'anonymous_enable=NO',
    'local_enable=YES',
    'write_enable=YES',
    'local_umask=022',
    'pasv_enable=YES',
    'pasv_address=127.0.0.1',
    `pasv_min_port=${pasv.min}`,
    `pasv_max_port=${pasv.max}`,
    'seccomp_sandbox=NO',
    `secure_chroot_dir=${emptyDir}`,
    'pam_service_name=vsftpd',
    'chroot_local_user=YES',
    'allow_writeable_chroot=YES',
    'utf8_filesystem=YES',
    'xferlog_enable=YES',
    'xferlog_std_format=YES',
    `xferlog_file=${xferlogPath}`,
    'use_localtime=NO',
    ...(opts.maxPerIp !== undefined ? [`max_per_ip=${opts.maxPerIp}`] : []),
    ...(certificate
      ? [
          'ssl_enable=YES',
          `rsa_cert_file=${certificate.certPath}`,
          `rsa_private_key_file=${certificate.keyPath}`,
          'force_local_logins_ssl=NO',
          'force_local_data_ssl=NO',
          // vsftpd's default, as shipped (FileZilla Server enforces the same): a data connection
          // must resume the control connection's TLS session, or it is refused.
          'require_ssl_reuse=YES',
          `implicit_ssl=${opts.tls === 'implicit' ? 'YES' : 'NO'}`,
        ]
      : ['ssl_enable=NO']),
  ];
  const configPath = path.join(work.path, 'vsftpd.conf');
  await writeFile(configPath, `${lines.join('\n')}\n`, { mode: 0o600 });
  const child = spawnGroup(VSFTPD, [configPath], await pinTlsVersion(work.path, opts.tlsVersion));
  return await finishStart('vsftpd', child, work, port, opts.tls, opts.account, certificate, xferlogPath);
}

export interface PureFtpdOptions {
  account: ServerAccount;
  /** `-L files:depth`. Default: pure-ftpd's own default cap of 2,000 entries per listing. */
  listingCap?: string;
  /** Offer explicit TLS (-Y 1). */
  tls?: boolean;
  /** Only this TLS version is spoken. Default: what OpenSSL offers. */
  tlsVersion?: TlsVersion;
}

/** Starts pure-ftpd (unpacked into .cache/servers) in the foreground. */
export async function startPureFtpd(opts: PureFtpdOptions): Promise<RealFtpServer> {
  const work = await makeTmpDir('poller-pure-ftpd-');
  const port = await freePort();
  const pasv = await freePortRange(30);
  const certificate = opts.tls ? await makeTestCertificate(work.path) : undefined;
  const args = [
    '-S',
    `127.0.0.1,${port}`,
    '-P',
    '127.0.0.1',
    '-p',
    `${pasv.min}:${pasv.max}`,
    '-l',
    'unix',
    '-E',
    '-H',
    '-A',
  ];
  if (opts.listingCap !== undefined) args.push('-L', opts.listingCap);
  if (certificate) {
    const pemPath = path.join(work.path, 'pure-ftpd.pem');
    await writeFile(pemPath, `${certificate.keyPem}${certificate.certPem}`, { mode: 0o600 });
    args.push('-Y', '1', '-2', pemPath);
  } else {
    args.push('-Y', '0');
  }
  const child = spawnGroup(PURE_FTPD, args, await pinTlsVersion(work.path, opts.tlsVersion));
  return await finishStart(
    'pure-ftpd',
    child,
    work,
    port,
    certificate ? 'explicit' : 'none',
    opts.account,
    certificate,
  );
}

function spawnGroup(binary: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
  // A process group of its own, so close() can stop the server and its session processes, and nothing else.
  const conf = env?.['OPENSSL_CONF'];
  // sudo drops the environment: the OpenSSL config goes through env(1) then.
  const [command, argv] =
    conf !== undefined && !isRoot()
      ? privileged('/usr/bin/env', [`OPENSSL_CONF=${conf}`, binary, ...args])
      : privileged(binary, args);
  return spawn(command, argv, { detached: true, stdio: ['ignore', 'ignore', 'pipe'], ...(env ? { env } : {}) });
}

/** Signals the whole process group led by `pid` (through sudo when the group runs as root and we do not). */
function signalGroup(pid: number, signal: 'SIGTERM' | 'SIGKILL'): void {
  try {
    if (isRoot()) process.kill(-pid, signal);
    else execFileSync('sudo', ['-n', 'kill', `-${signal.slice(3)}`, '--', `-${pid}`], { stdio: 'ignore' });
  } catch {
    // Already gone.
  }
}

async function finishStart(
  kind: RealFtpServer['kind'],
  child: ChildProcess,
  work: TmpDir,
  port: number,
  tlsMode: RealTlsMode,
  account: ServerAccount,
  certificate: TestCertificate | undefined,
  xferlogPath?: string,
): Promise<RealFtpServer> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (!exited && child.pid !== undefined) {
      signalGroup(child.pid, 'SIGTERM');
      await Promise.race([exitedPromise, new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
      if (!exited) {
        signalGroup(child.pid, 'SIGKILL');
        await exitedPromise;
      }
    }
    await work.remove();
  };
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`${kind} exited at start: ${stderr.trim()}`);
        return await canConnect(port);
      },
      { timeoutMs: 10_000, what: `${kind} listening on ${port}` },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  let closed = false;
  return {
    kind,
    host: '127.0.0.1',
    port,
    tlsMode,
    ...(certificate ? { certificate } : {}),
    ...(xferlogPath ? { xferlogPath } : {}),
    account,
    async close() {
      if (closed) return;
      closed = true;
      await stop();
    },
  };
}

async function canConnect(port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Lines of vsftpd's xferlog: bytes (field 8) and completion (`c`/`i`, last field) per transfer. */
export async function readXferlog(file: string): Promise<Array<{ bytes: number; path: string; complete: boolean }>> {
  if (!existsSync(file)) return [];
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const fields = line.trim().split(/\s+/);
      return {
        bytes: Number(fields[7]),
        path: fields[8] ?? '',
        complete: fields[fields.length - 1] === 'c',
      };
    });
}
