import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sha256Fingerprint } from '../../src/sources/sftp/host-key.js';
import { generateEd25519 } from './sftp-server.js';

/**
 * Real OpenSSH sshd for tests and benchmarks: `sshd -D -e -f <config>` on 127.0.0.1 with a
 * throw-away config, host key and system user (sshd logs in real accounts), stopped by the
 * process id it was started with. Needs root, or passwordless sudo.
 */

/** Debian's path; POLLER_TEST_SSHD points elsewhere (or at nothing, to try the skip path). */
const { POLLER_TEST_SSHD } = process.env;
const SSHD = POLLER_TEST_SSHD ?? '/usr/sbin/sshd';
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/** Whether real sshd tests can run here, and why not. */
export interface SshdAvailability {
  readonly available: boolean;
  readonly reason: string;
}

/** A running sshd and what a client needs to reach it. */
export interface SshdServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The directory to serve files from (an absolute real path). It stays owned by the test process:
   * files written there with default modes (644, dirs 755) are readable by the sshd user, and a
   * file made mode 600 is not. */
  readonly root: string;
  readonly user: string;
  readonly password: string;
  readonly privateKey: Buffer;
  /** Path of the client private key file (for OpenSSH's own sftp client). */
  readonly privateKeyFile: string;
  readonly hostKeyFingerprint: string;
  /** A known_hosts file listing this server. */
  readonly knownHostsFile: string;
  stop(): Promise<void>;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function canSudo(): boolean {
  try {
    execFileSync('sudo', ['-n', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Checks for sshd and the privileges to run it; decides skip (locally) or fail (CI=true). */
export function sshdAvailability(): SshdAvailability {
  try {
    accessSync(SSHD, fsConstants.X_OK);
  } catch {
    return { available: false, reason: `${SSHD} not found (apt-get install openssh-server)` };
  }
  if (!isRoot() && !canSudo()) return { available: false, reason: 'sshd needs root or passwordless sudo' };
  return { available: true, reason: '' };
}

/** Runs a privileged command (directly as root, through `sudo -n` otherwise). */
function privileged(cmd: string, args: string[], input?: string): void {
  const [file, argv] = isRoot() ? [cmd, args] : ['sudo', ['-n', cmd, ...args]];
  execFileSync(file, argv, { input, stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** useradd takes a lock on /etc/passwd; parallel test files can collide on it briefly. */
async function withRetries(work: () => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      work();
      return;
    } catch (err) {
      if (attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

function waitForListening(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => done(new Error(`sshd did not start within ${START_TIMEOUT_MS} ms: ${output}`)),
      START_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes(`Server listening on 127.0.0.1 port ${port}`)) done();
    };
    const onExit = (code: number | null): void =>
      done(new Error(`sshd exited (${code}) before listening: ${output.trim()}`));
    function done(err?: Error): void {
      clearTimeout(timer);
      child.stderr?.removeListener('data', onData);
      child.removeListener('exit', onExit);
      // Keep draining stderr so sshd never blocks on a full pipe.
      child.stderr?.resume();
      if (err) reject(err);
      else resolve();
    }
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Starts sshd with a fresh user, keys and served directory. Call `sshdAvailability()` first. */
export async function startSshd(): Promise<SshdServer> {
  const base = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'poller-sshd-')));
  // sshd reads authorized_keys as the user: the directory must be traversable by it.
  await fs.chmod(base, 0o755);
  const root = path.join(base, 'root');
  await fs.mkdir(root);
  const user = `pt${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('base64url');

  const hostKeyFile = path.join(base, 'host_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKeyFile], { stdio: 'ignore' });
  const hostPub = (await fs.readFile(`${hostKeyFile}.pub`, 'utf8')).trim().split(/\s+/);
  const hostBlob = Buffer.from(hostPub[1] ?? '', 'base64');

  const clientKey = generateEd25519();
  const privateKeyFile = path.join(base, 'client_ed25519');
  await fs.writeFile(privateKeyFile, clientKey.private, { mode: 0o600 });
  const authorizedKeys = path.join(base, 'authorized_keys');
  await fs.writeFile(authorizedKeys, `${clientKey.public}\n`, { mode: 0o644 });

  await fs.mkdir('/run/sshd', { recursive: true, mode: 0o755 }).catch(() => {
    privileged('mkdir', ['-p', '-m', '755', '/run/sshd']);
  });
  await withRetries(() => privileged('useradd', ['-M', '-d', root, '-s', '/bin/sh', user]));
  const cleanupUser = async (): Promise<void> => {
    // userdel refuses while a session process of the user is still exiting.
    await withRetries(() => privileged('userdel', [user])).catch(() => {});
  };
  try {
    await withRetries(() => privileged('chpasswd', [], `${user}:${password}\n`));

    let child: ChildProcess | undefined;
    let port = 0;
    for (let attempt = 1; child === undefined; attempt++) {
      port = await freePort();
      const config = path.join(base, 'sshd_config');
      await fs.writeFile(
        config,
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${hostKeyFile}`,
          'PidFile none',
          'UsePAM no',
          'PasswordAuthentication yes',
          'KbdInteractiveAuthentication no',
          'PubkeyAuthentication yes',
          `AuthorizedKeysFile ${authorizedKeys}`,
          'StrictModes no',
          'PermitRootLogin no',
          `AllowUsers ${user}`,
          'Subsystem sftp internal-sftp',
          'MaxStartups 100:30:200',
          'MaxSessions 20',
          'LogLevel INFO',
          '',
        ].join('\n'),
      );
      const [file, argv] = isRoot()
        ? [SSHD, ['-D', '-e', '-f', config]]
        : ['sudo', ['-n', SSHD, '-D', '-e', '-f', config]];
      const started = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
      try {
        await waitForListening(started, port);
        child = started;
      } catch (err) {
        started.kill('SIGTERM');
        if (attempt >= 3) throw err;
      }
    }

    const knownHostsFile = path.join(base, 'known_hosts');
    await fs.writeFile(knownHostsFile, `[127.0.0.1]:${port} ${hostPub[0]} ${hostPub[1]}\n`);
    const sshd = child;

    return {
      host: '127.0.0.1',
      port,
      root,
      user,
      password,
      privateKey: Buffer.from(clientKey.private),
      privateKeyFile,
      hostKeyFingerprint: sha256Fingerprint(hostBlob),
      knownHostsFile,
      async stop() {
        if (sshd.exitCode === null && sshd.signalCode === null) {
          const exited = new Promise<void>((resolve) => sshd.once('exit', () => resolve()));
          sshd.kill('SIGTERM');
          const timer = setTimeout(() => sshd.kill('SIGKILL'), STOP_TIMEOUT_MS);
          await exited;
          clearTimeout(timer);
        }
        await cleanupUser();
        await fs.rm(base, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await cleanupUser();
    await fs.rm(base, { recursive: true, force: true });
    throw err;
  }
}
