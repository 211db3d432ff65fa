/**
 * Case: catch-up after an outage: 24 h of a radar feed (288 volumes x 10 files of 500 KiB, a
 * dated tree `radar/<site>/<YYYY>/<MM>/<DD>/`) from vsftpd, 8 connections, against the basic-ftp
 * floor, rclone and (when installed) lftp. Goals: >= 1.25x rclone, poller lands the newest volume
 * within the first 5 % of its run, and within 0.2x of rclone's whole copy. "Landed" for poller is the time of the last `file.fetched` log line of the newest
 * volume; for every tool (poller too, as a cross-check) also the latest change time of the
 * newest volume's landed files. Both are relative to the spawn of the run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createServerAccount, realServerSupport, startVsftpd } from '../../test/helpers/debian-ftp.js';
import { writeRadarFeed } from '../lib/data.js';
import { basicFtpFloor } from '../lib/node-floors.js';
import { ctimesUnder, type FtpLogin, lftpMirror, outDir, rcloneCopy } from '../lib/peers.js';
import { logTimeMs, pollerContenders, pollerLogLines } from '../lib/poller-cli.js';
import {
  type CaseOutcome,
  type GoalCheck,
  printGoals,
  printSideBySide,
  ratioGoal,
  runSideBySide,
} from '../lib/side-by-side.js';
import { fmt, median } from '../lib/stats.js';
import type { TimedRun } from '../lib/timed.js';
import { missingTools } from '../lib/timed.js';

const FILE_BYTES = 500 * 1024;
const FILES_PER_VOLUME = 10;
const SITE = 'DEHAM';
const PARALLEL = 8;

export async function benchCatchUp(opts: { reps: number; scale: number }): Promise<CaseOutcome | undefined> {
  const support = realServerSupport();
  const missing = missingTools(['rclone', '/usr/bin/time']);
  const withLftp = missingTools(['lftp']).length === 0;
  if (!support.vsftpd.available || missing.length > 0) {
    console.log(
      `catchup: skipped: ${support.vsftpd.reason ?? `missing ${missing.join(', ')}`}; run scripts/install-bench-tools.sh`,
    );
    return undefined;
  }
  const volumes = Math.max(2, Math.round(288 * opts.scale));
  const account = await createServerAccount();
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-catchup-'));
  const server = await startVsftpd({ account, tls: 'none' });
  try {
    // The newest volume is 5 minutes old: past the settle window, so taken at first sight.
    const feed = await writeRadarFeed(path.join(account.root, 'radar'), {
      site: SITE,
      volumes,
      filesPerVolume: FILES_PER_VOLUME,
      sizeBytes: FILE_BYTES,
      newestAgeMs: 5 * 60_000,
    });
    const newest = new Set(feed[feed.length - 1]?.files ?? []);
    const files = volumes * FILES_PER_VOLUME;
    const expect = { files, bytes: files * FILE_BYTES };
    const login: FtpLogin = { host: server.host, port: server.port, user: account.user, password: account.password };

    /** Percent of the run at which the last file of the newest volume was complete, by change time. */
    const newestByCtime =
      (landedUnder: (dest: string) => string) =>
      async (run: TimedRun, dest: string): Promise<Record<string, number>> => {
        const ctimes = await ctimesUnder(landedUnder(dest));
        let last = 0;
        for (const rel of newest) last = Math.max(last, ctimes.get(rel) ?? Number.POSITIVE_INFINITY);
        return { newestCtimePct: ((last - run.startedAtMs) / run.wallMs) * 100 };
      };

    console.log(`catchup: ${volumes} volumes x ${FILES_PER_VOLUME} files x 500 KiB, ${PARALLEL} connections, vsftpd`);
    const result = await runSideBySide({
      name: 'catchup',
      label: `catch-up: ${volumes} volumes x ${FILES_PER_VOLUME} files x 500 KiB (dated tree), ${PARALLEL} connections, vsftpd`,
      unit: 'files/s',
      work: files,
      reps: opts.reps,
      scratch,
      contenders: [
        ...pollerContenders({
          source: {
            url: `ftp://${login.user}@${login.host}:${login.port}/radar`,
            include: '**/*.bufr',
            concurrency: PARALLEL,
            maxConnections: PARALLEL,
            maxFilesPerPoll: 1_000_000,
          },
          password: login.password,
          expectFiles: files,
          expectBytes: expect.bytes,
          logLevel: 'info',
          extra: async (run, dest) => {
            let last = Number.NEGATIVE_INFINITY;
            let first = Number.POSITIVE_INFINITY;
            let seen = 0;
            for (const line of pollerLogLines(run.stderr)) {
              if (line.event !== 'file.fetched' || typeof line.path !== 'string') continue;
              first = Math.min(first, logTimeMs(line));
              if (!newest.has(line.path)) continue;
              last = Math.max(last, logTimeMs(line));
              seen++;
            }
            if (seen !== newest.size)
              throw new Error(`poller: ${seen} file.fetched lines for the newest volume, expected ${newest.size}`);
            const byCtime = await newestByCtime((d) => path.join(d, 'landing', 'bench'))(run, dest);
            const pct = (t: number) => ((t - run.startedAtMs) / run.wallMs) * 100;
            return {
              firstFetchedPct: pct(first),
              newestLoggedPct: pct(last),
              newestLoggedMs: last - run.startedAtMs,
              ...byCtime,
            };
          },
        }),
        basicFtpFloor(login, 'radar', PARALLEL, expect, newestByCtime(outDir)),
        rcloneCopy(login, 'radar', PARALLEL, expect, newestByCtime(outDir)),
        ...(withLftp ? [lftpMirror(login, 'radar', PARALLEL, expect, newestByCtime(outDir))] : []),
      ],
    });
    printSideBySide(result);
    const poller = result.contenders.find((c) => c.name === 'poller');
    const pct = median(poller?.extra['newestLoggedPct'] ?? [Number.NaN]);
    const newestGoal: GoalCheck = {
      goal: 'newest volume landed within the first 5 % of the run',
      actual: `${fmt(pct, 1)} % (median; by ctime ${fmt(median(poller?.extra['newestCtimePct'] ?? [Number.NaN]), 1)} %)`,
      met: pct <= 5,
    };
    // The newest volume against rclone's whole copy: how soon the data users want is there.
    const rclone = result.contenders.find((c) => c.name === 'rclone');
    const newestMs = median(poller?.extra['newestLoggedMs'] ?? [Number.NaN]);
    const vsRclone = newestMs / median(rclone?.wallMs ?? [Number.NaN]);
    const newestVsRclone: GoalCheck = {
      goal: "newest volume landed within 0.2x of rclone's whole copy",
      actual: `${fmt(newestMs / 1000)} s = ${fmt(vsRclone)}x rclone's ${fmt(median(rclone?.wallMs ?? [Number.NaN]) / 1000)} s`,
      met: vsRclone <= 0.2,
    };
    for (const c of result.contenders)
      console.log(
        `  ${c.name}: newest volume complete at ${fmt(median(c.extra['newestCtimePct'] ?? [Number.NaN]), 1)} % of the run`,
      );
    const goals = [ratioGoal(result, 1.25, 'rclone'), newestGoal, newestVsRclone];
    printGoals(goals);
    return { result, goals };
  } finally {
    await server.close();
    await account.remove();
    await rm(scratch, { recursive: true, force: true });
  }
}
