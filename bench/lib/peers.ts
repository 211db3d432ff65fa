/**
 * The peers' command lines (see SERVERS.md): rclone, lftp, curl and OpenSSH's sftp, each writing
 * into `<dest>/out`, and the check of what they wrote. Passwords go through the environment or
 * argv of a child only; nothing here prints them.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { type Contender, expectTree } from './side-by-side.js';
import type { TimedCommand, TimedRun } from './timed.js';

export interface FtpLogin {
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface SftpLogin {
  host: string;
  port: number;
  user: string;
  password: string;
  privateKeyFile: string;
  knownHostsFile: string;
}

/** The peer's output directory inside a repetition's fresh directory. */
export const outDir = (dest: string): string => path.join(dest, 'out');

function peer(
  name: string,
  expectFiles: number,
  expectBytes: number,
  command: (dest: string) => TimedCommand,
  extra?: (run: TimedRun, dest: string) => Promise<Record<string, number>>,
): Contender {
  return {
    name,
    async command(dest) {
      // Some peers (lftp get, sftp) want the local directory to exist.
      await mkdir(outDir(dest), { recursive: true });
      return command(dest);
    },
    async verify(dest, run) {
      await expectTree(name, outDir(dest), expectFiles, expectBytes);
      return extra ? await extra(run, dest) : {};
    },
  };
}

let obscured: { plain: string; value: string } | undefined;
/** rclone wants its config passwords obscured (`rclone obscure`). */
function rcloneObscure(password: string): string {
  if (obscured?.plain !== password)
    obscured = { plain: password, value: execFileSync('rclone', ['obscure', password]).toString().trim() };
  return obscured.value;
}

/** `rclone copy :ftp:<dir> <dest>/out --transfers N --checkers N`. */
export function rcloneCopy(
  login: FtpLogin,
  remoteDir: string,
  parallel: number,
  expect: { files: number; bytes: number },
  extra?: (run: TimedRun, dest: string) => Promise<Record<string, number>>,
): Contender {
  return peer(
    'rclone',
    expect.files,
    expect.bytes,
    (dest) => ({
      command: 'rclone',
      args: [
        'copy',
        `:ftp:${remoteDir}`,
        outDir(dest),
        '--transfers',
        String(parallel),
        '--checkers',
        String(parallel),
      ],
      env: {
        RCLONE_CONFIG: '/dev/null',
        RCLONE_FTP_HOST: login.host,
        RCLONE_FTP_PORT: String(login.port),
        RCLONE_FTP_USER: login.user,
        RCLONE_FTP_PASS: rcloneObscure(login.password),
      },
    }),
    extra,
  );
}

function lftpOpen(login: FtpLogin): string {
  return `set ftp:ssl-allow no; open -u ${login.user},${login.password} -p ${login.port} ${login.host}`;
}

/** `lftp mirror --parallel=N <dir> <dest>/out` over plain FTP. */
export function lftpMirror(
  login: FtpLogin,
  remoteDir: string,
  parallel: number,
  expect: { files: number; bytes: number },
  extra?: (run: TimedRun, dest: string) => Promise<Record<string, number>>,
): Contender {
  return peer(
    'lftp',
    expect.files,
    expect.bytes,
    (dest) => ({
      command: 'lftp',
      args: ['-c', `${lftpOpen(login)}; mirror --parallel=${parallel} ${remoteDir} ${outDir(dest)}`],
    }),
    extra,
  );
}

/** `lftp get <file> -o <dest>/out/<name>`: one stream over plain FTP. */
export function lftpGet(login: FtpLogin, remoteFile: string, sizeBytes: number): Contender {
  return peer('lftp', 1, sizeBytes, (dest) => ({
    command: 'lftp',
    args: [
      '-c',
      `${lftpOpen(login)}; get ${remoteFile} -o ${path.join(outDir(dest), path.posix.basename(remoteFile))}`,
    ],
  }));
}

/** `curl ftp://... -o <dest>/out/<name>`; with `caFile`, explicit FTPS (`--ssl-reqd`). */
export function curlFtp(login: FtpLogin, remoteFile: string, sizeBytes: number, caFile?: string): Contender {
  return peer(caFile ? 'curl-ftps' : 'curl', 1, sizeBytes, (dest) => ({
    command: 'curl',
    args: [
      '-sS',
      '--create-dirs',
      ...(caFile ? ['--ssl-reqd', '--cacert', caFile] : []),
      '--user',
      `${login.user}:${login.password}`,
      `ftp://${login.host}:${login.port}/${remoteFile}`,
      '-o',
      path.join(outDir(dest), path.posix.basename(remoteFile)),
    ],
  }));
}

/** OpenSSH `sftp` (key auth, known_hosts checked) fetching one absolute path. */
export function opensshSftp(login: SftpLogin, remoteFile: string, sizeBytes: number): Contender {
  return peer('openssh-sftp', 1, sizeBytes, (dest) => ({
    command: 'sftp',
    args: [
      '-q',
      '-P',
      String(login.port),
      '-i',
      login.privateKeyFile,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${login.knownHostsFile}`,
      `${login.user}@${login.host}:${remoteFile}`,
      `${outDir(dest)}/`,
    ],
  }));
}

/** `curl sftp://...` (password auth; the host key pinned by its SHA-256). */
export function curlSftp(login: SftpLogin, remoteFile: string, sizeBytes: number, hostKeySha256: string): Contender {
  // curl wants the bare base64 with padding; OpenSSH prints "SHA256:" and no padding.
  let b64 = hostKeySha256.replace(/^SHA256:/, '');
  while (b64.length % 4) b64 += '=';
  return peer('curl-sftp', 1, sizeBytes, (dest) => ({
    command: 'curl',
    args: [
      '-sS',
      '--create-dirs',
      '--hostpubsha256',
      b64,
      '--user',
      `${login.user}:${login.password}`,
      `sftp://${login.host}:${login.port}${remoteFile}`,
      '-o',
      path.join(outDir(dest), path.posix.basename(remoteFile)),
    ],
  }));
}

/** Change times (epoch ms) of the files under `dir` by path relative to it: when each was completed. */
export async function ctimesUnder(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const stack = [''];
  for (let guard = 0; stack.length > 0 && guard < 100_000; guard++) {
    const rel = stack.pop() as string;
    for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (!e.name.startsWith('.')) stack.push(r);
      } else if (e.isFile()) out.set(r, (await stat(path.join(dir, r))).ctimeMs);
    }
  }
  return out;
}

/** `rclone copy :http: <dest>/out` with RCLONE_HTTP_URL (rclone's HTTP index backend). */
export function rcloneHttp(url: string, parallel: number, expect: { files: number; bytes: number }): Contender {
  return peer('rclone', expect.files, expect.bytes, (dest) => ({
    command: 'rclone',
    args: ['copy', ':http:', outDir(dest), '--transfers', String(parallel), '--checkers', String(parallel)],
    env: { RCLONE_CONFIG: '/dev/null', RCLONE_HTTP_URL: url },
  }));
}

/** `wget -r -np` of an index tree (one connection: wget has no parallel mode), index pages discarded. */
export function wgetRecursive(url: string, cutDirs: number, expect: { files: number; bytes: number }): Contender {
  return peer('wget', expect.files, expect.bytes, (dest) => ({
    command: 'wget',
    args: [
      '-r',
      '-np',
      '-nH',
      `--cut-dirs=${cutDirs}`,
      '-q',
      '-e',
      'robots=off',
      '--reject',
      'index.html*',
      '-P',
      outDir(dest),
      url,
    ],
  }));
}
