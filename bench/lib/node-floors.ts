/**
 * Node floors as contenders: the least Node program doing the same copy with the library poller
 * uses (bench/floors/), run side by side with poller and its peers. Their figures say how much of
 * a gap is the library's and how much is poller's own work around it.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FtpLogin, outDir, type SftpLogin } from './peers.js';
import { type Contender, expectTree } from './side-by-side.js';
import type { TimedRun } from './timed.js';

const FLOORS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'floors');

function floor(
  name: string,
  script: string,
  expect: { files: number; bytes: number },
  args: (out: string) => string[],
  more: {
    env?: Record<string, string>;
    extra?: ((run: TimedRun, dest: string) => Promise<Record<string, number>>) | undefined;
  } = {},
): Contender {
  return {
    name,
    async command(dest) {
      await mkdir(outDir(dest), { recursive: true });
      return {
        command: process.execPath,
        args: [path.join(FLOORS, script), ...args(outDir(dest))],
        ...(more.env && { env: more.env }),
      };
    },
    async verify(dest, run) {
      await expectTree(name, outDir(dest), expect.files, expect.bytes);
      return more.extra ? await more.extra(run, dest) : {};
    },
  };
}

/**
 * `floor`: basic-ftp with `parallel` clients, list the tree, `downloadTo` each file, nothing else
 * (the password through the environment, never argv).
 */
export function basicFtpFloor(
  login: FtpLogin,
  remoteDir: string,
  parallel: number,
  expect: { files: number; bytes: number },
  extra?: (run: TimedRun, dest: string) => Promise<Record<string, number>>,
): Contender {
  return floor(
    'floor',
    'basic-ftp-copy.js',
    expect,
    (out) => [login.host, String(login.port), login.user, `/${remoteDir}`, out, String(parallel)],
    { env: { FLOOR_FTP_PASSWORD: login.password }, extra },
  );
}

/** undici `request` piped to a file per file of an index tree, `parallel` connections. */
export function undiciFloor(url: string, parallel: number, expect: { files: number; bytes: number }): Contender {
  return floor('undici-floor', 'http-undici.js', expect, (out) => [url, out, String(parallel)]);
}

/** ssh2 `fastGet` of one file with its defaults, then fsync. */
export function ssh2Floor(login: SftpLogin, remoteFile: string, sizeBytes: number): Contender {
  return floor('ssh2-floor', 'sftp-fastget.js', { files: 1, bytes: sizeBytes }, (out) => [
    login.host,
    String(login.port),
    login.user,
    login.privateKeyFile,
    remoteFile,
    path.join(out, path.posix.basename(remoteFile)),
  ]);
}
