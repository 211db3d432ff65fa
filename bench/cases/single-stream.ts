/**
 * Cases: one 1 GiB file, single stream, landing to disk.
 * - big-ftp (vsftpd, plain): poller against `curl -o` and `lftp get`. Goal: >= 0.9x the faster peer.
 * - big-ftps (vsftpd, explicit TLS): poller against `curl --ssl-reqd`. Goal: >= 1.0x curl.
 * - big-sftp (OpenSSH sshd): one 512 MiB file; poller against the ssh2 floor (`fastGet` + fsync,
 *   bench/floors/sftp-fastget.ts), OpenSSH `sftp` and `curl sftp://`. Goal: >= 0.75x OpenSSH.
 * The file is generated once and hard-linked into each server's tree (big-sftp: its own, half as big).
 */
import { link, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createServerAccount, realServerSupport, startVsftpd } from '../../test/helpers/debian-ftp.js';
import { type SshdServer, sshdAvailability, startSshd } from '../../test/helpers/sshd.js';
import { writeRandomFile } from '../lib/data.js';
import { ssh2Floor } from '../lib/node-floors.js';
import { curlFtp, curlSftp, type FtpLogin, lftpGet, opensshSftp, type SftpLogin } from '../lib/peers.js';
import { pollerContender, pollerContenders } from '../lib/poller-cli.js';
import {
  type CaseOutcome,
  type Contender,
  printGoals,
  printSideBySide,
  ratioGoal,
  runSideBySide,
} from '../lib/side-by-side.js';
import { missingTools } from '../lib/timed.js';

export const SINGLE_STREAM_CASES = ['big-ftp', 'big-ftps', 'big-sftp'] as const;
export type SingleStreamCase = (typeof SINGLE_STREAM_CASES)[number];

const GIB = 1024 ** 3;
const NAME = 'one.bin';
/** big-sftp's file: 512 MiB (the issue's case), half the FTP cases' gigabyte. */
const SFTP_BYTES = 512 * 1024 ** 2;

export async function benchSingleStream(opts: {
  reps: number;
  scale: number;
  cases: readonly SingleStreamCase[];
}): Promise<CaseOutcome[]> {
  const sizeBytes = Math.max(1024 * 1024, Math.round(GIB * opts.scale));
  const missing = missingTools(['curl', 'lftp', 'sftp', '/usr/bin/time']);
  if (missing.length > 0) {
    console.log(`big: skipped: missing ${missing.join(', ')}; run scripts/install-bench-tools.sh`);
    return [];
  }
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-big-'));
  const master = path.join(scratch, 'master', NAME);
  const outcomes: CaseOutcome[] = [];
  try {
    const label = `one ${(sizeBytes / GIB).toFixed(sizeBytes >= GIB ? 0 : 2)} GiB file, single stream`;
    const mb = sizeBytes / 1e6;
    const ftpCases = opts.cases.filter((c) => c !== 'big-sftp');
    if (ftpCases.length > 0) {
      await writeRandomFile(master, sizeBytes, new Date(Date.now() - 3_600_000));
      const support = realServerSupport();
      if (!support.vsftpd.available) console.log(`big-ftp(s): skipped: ${support.vsftpd.reason}`);
      else {
        const account = await createServerAccount();
        try {
          await link(master, path.join(account.root, NAME));
          for (const c of ftpCases) {
            const tls = c === 'big-ftps';
            const server = await startVsftpd({ account, tls: tls ? 'explicit' : 'none' });
            try {
              const login: FtpLogin = {
                host: server.host,
                port: server.port,
                user: account.user,
                password: account.password,
              };
              const ca = server.certificate?.certPath;
              const poller = pollerContender({
                source: {
                  url: `${tls ? 'ftps' : 'ftp'}://${login.user}@${login.host}:${login.port}/`,
                  include: NAME,
                  concurrency: 1,
                  ...(tls && { ca }),
                },
                password: login.password,
                expectFiles: 1,
                expectBytes: sizeBytes,
              });
              const peers: Contender[] = tls
                ? [curlFtp(login, NAME, sizeBytes, ca)]
                : [curlFtp(login, NAME, sizeBytes), lftpGet(login, NAME, sizeBytes)];
              console.log(`${c}: ${label}, vsftpd${tls ? ' explicit FTPS' : ''}`);
              const result = await runSideBySide({
                name: c,
                label: `${label}, ${tls ? 'explicit FTPS' : 'plain FTP'}, vsftpd`,
                unit: 'MB/s',
                work: mb,
                reps: opts.reps,
                scratch,
                contenders: [poller, ...peers],
              });
              printSideBySide(result);
              const goals = [tls ? ratioGoal(result, 1.0, 'curl-ftps') : ratioGoal(result, 0.9)];
              printGoals(goals);
              outcomes.push({ result, goals });
            } finally {
              await server.close();
            }
          }
        } finally {
          await account.remove();
        }
      }
    }
    if (opts.cases.includes('big-sftp')) {
      const sftpBytes = Math.max(1024 * 1024, Math.round(SFTP_BYTES * opts.scale));
      const sftpMaster = path.join(scratch, 'master-sftp', NAME);
      const sftpLabel = `one ${(sftpBytes / 1024 ** 2).toFixed(0)} MiB file, single stream`;
      const avail = sshdAvailability();
      if (!avail.available) console.log(`big-sftp: skipped: ${avail.reason}`);
      else {
        let sshd: SshdServer | undefined;
        try {
          sshd = await startSshd();
          const remote = path.join(sshd.root, NAME);
          await mkdir(sshd.root, { recursive: true });
          await writeRandomFile(sftpMaster, sftpBytes, new Date(Date.now() - 3_600_000));
          await link(sftpMaster, remote);
          const login: SftpLogin = {
            host: sshd.host,
            port: sshd.port,
            user: sshd.user,
            password: sshd.password,
            privateKeyFile: sshd.privateKeyFile,
            knownHostsFile: sshd.knownHostsFile,
          };
          const pollers = pollerContenders({
            source: {
              url: `sftp://${login.user}@${login.host}:${login.port}${sshd.root}`,
              privateKeyFile: login.privateKeyFile,
              knownHosts: login.knownHostsFile,
              include: NAME,
              concurrency: 1,
            },
            expectFiles: 1,
            expectBytes: sftpBytes,
          });
          console.log(`big-sftp: ${sftpLabel}, OpenSSH sshd`);
          const result = await runSideBySide({
            name: 'big-sftp',
            label: `${sftpLabel}, SFTP, OpenSSH sshd`,
            unit: 'MB/s',
            work: sftpBytes / 1e6,
            reps: opts.reps,
            scratch,
            contenders: [
              ...pollers,
              ssh2Floor(login, remote, sftpBytes),
              opensshSftp(login, remote, sftpBytes),
              curlSftp(login, remote, sftpBytes, sshd.hostKeyFingerprint),
            ],
          });
          printSideBySide(result);
          const goals = [ratioGoal(result, 0.75, 'openssh-sftp')];
          printGoals(goals);
          outcomes.push({ result, goals });
        } finally {
          await sshd?.stop();
        }
      }
    }
    return outcomes;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
