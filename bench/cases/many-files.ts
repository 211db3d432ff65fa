/**
 * Case: 2,000 files x 100 KiB in 20 directories from vsftpd, 8 connections, landing to disk;
 * poller against the basic-ftp floor (bench/floors/basic-ftp-copy.ts), `rclone copy --transfers 8
 * --checkers 8` and, when installed, `lftp mirror --parallel=8`.
 * Goals: >= 1.25x rclone in files/s, CPU <= 1.0x rclone's, <= 100 MB peak RSS, and within 1.2x of
 * the floor in wall and CPU.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createServerAccount, realServerSupport, startVsftpd } from '../../test/helpers/debian-ftp.js';
import { writeFlatTree } from '../lib/data.js';
import { basicFtpFloor } from '../lib/node-floors.js';
import { type FtpLogin, lftpMirror, rcloneCopy } from '../lib/peers.js';
import { pollerContenders } from '../lib/poller-cli.js';
import {
  type CaseOutcome,
  cpuGoal,
  floorGoal,
  printGoals,
  printSideBySide,
  ratioGoal,
  rssGoal,
  runSideBySide,
} from '../lib/side-by-side.js';
import { missingTools } from '../lib/timed.js';

const FILE_BYTES = 100 * 1024;
const DIRS = 20;
const PARALLEL = 8;

export async function benchManyFiles(opts: { reps: number; scale: number }): Promise<CaseOutcome | undefined> {
  const support = realServerSupport();
  const missing = missingTools(['rclone', '/usr/bin/time']);
  const withLftp = missingTools(['lftp']).length === 0;
  if (!support.vsftpd.available || missing.length > 0) {
    console.log(
      `many: skipped: ${support.vsftpd.reason ?? `missing ${missing.join(', ')}`}; run scripts/install-bench-tools.sh`,
    );
    return undefined;
  }
  const files = Math.max(DIRS, Math.round(2000 * opts.scale));
  const account = await createServerAccount();
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-many-'));
  const server = await startVsftpd({ account, tls: 'none' });
  try {
    await writeFlatTree(path.join(account.root, 'many'), files, DIRS, FILE_BYTES, new Date(Date.now() - 3_600_000));
    const login: FtpLogin = { host: server.host, port: server.port, user: account.user, password: account.password };
    const expect = { files, bytes: files * FILE_BYTES };
    console.log(`many: ${files} files x ${FILE_BYTES / 1024} KiB in ${DIRS} dirs, ${PARALLEL} connections, vsftpd`);
    const result = await runSideBySide({
      name: 'many',
      label: `${files} files x 100 KiB in ${DIRS} dirs, ${PARALLEL} connections, vsftpd`,
      unit: 'files/s',
      work: files,
      reps: opts.reps,
      scratch,
      contenders: [
        ...pollerContenders({
          source: {
            url: `ftp://${login.user}@${login.host}:${login.port}/many`,
            concurrency: PARALLEL,
            maxConnections: PARALLEL,
            // A plain config (the default cap of 1000 per batch): one run-once must land all.
            // An A/B against an older build that stops at the cap lifts it for both.
            ...(process.env['BENCH_BASELINE'] && { maxFilesPerPoll: 1_000_000 }),
          },
          password: login.password,
          expectFiles: expect.files,
          expectBytes: expect.bytes,
        }),
        basicFtpFloor(login, 'many', PARALLEL, expect),
        rcloneCopy(login, 'many', PARALLEL, expect),
        ...(withLftp ? [lftpMirror(login, 'many', PARALLEL, expect)] : []),
      ],
      strace: ['poller', 'rclone'],
    });
    printSideBySide(result);
    const goals = [
      ratioGoal(result, 1.25, 'rclone'),
      cpuGoal(result, 1.0, 'rclone'),
      rssGoal(result, 100),
      ...floorGoal(result, 1.2),
    ];
    printGoals(goals);
    return { result, goals };
  } finally {
    await server.close();
    await account.remove();
    await rm(scratch, { recursive: true, force: true });
  }
}
