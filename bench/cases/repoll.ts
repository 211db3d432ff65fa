/**
 * Case: no-change re-poll of a 100,000-entry remote directory (vsftpd on 127.0.0.1), against the
 * bare listing by basic-ftp in the same run. Goal: poller <= 1.15x the bare listing, <= 150 MB RSS.
 */
import { closeSync, openSync, utimesSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServerAccount, realServerSupport, startVsftpd } from '../../test/helpers/debian-ftp.js';
import { type ChildMeasure, measureInChild } from '../lib/child.js';
import { fmt, median, printTable, spreadPct } from '../lib/stats.js';
import type { RepollArgs } from './repoll-child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'repoll-child.js');

export interface RepollResult {
  case: 'repoll';
  entries: number;
  server: string;
  reps: number;
  bareMs: number[];
  pollerMs: number[];
  bareRssMb: number[];
  pollerRssMb: number[];
  ratio: number;
  goal: { ratio: number; rssMb: number };
}

export async function benchRepoll(opts: { entries: number; reps: number }): Promise<RepollResult | undefined> {
  const support = realServerSupport();
  if (!support.vsftpd.available) {
    console.log(`repoll: skipped: ${support.vsftpd.reason}`);
    return undefined;
  }
  const account = await createServerAccount();
  const work = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-repoll-'));
  const server = await startVsftpd({ account, tls: 'none' });
  try {
    const dir = 'big';
    await mkdir(path.join(account.root, dir));
    const mtime = new Date(Date.now() - 3 * 86_400_000);
    for (let i = 0; i < opts.entries; i++) {
      const name = `T_PAGB41_C_${String(i).padStart(7, '0')}.bufr`;
      const file = path.join(account.root, dir, name);
      closeSync(openSync(file, 'w'));
      utimesSync(file, mtime, mtime);
    }
    await account.own();
    const args: RepollArgs = {
      host: server.host,
      port: server.port,
      user: account.user,
      password: account.password,
      dir,
      ledger: path.join(work, 'ledger.db'),
      landing: path.join(work, 'landing'),
    };
    // Seed the ledger with a first real cycle's result: every file known and fetched.
    const seed = await measureInChild(CHILD, 'seed', args);
    console.log(`repoll: seeded ${seed['listed']} entries in ${fmt(seed.ms / 1000)} s`);
    const bare: ChildMeasure[] = [];
    const poller: ChildMeasure[] = [];
    for (let r = 0; r < opts.reps; r++) {
      bare.push(await measureInChild(CHILD, 'bare', args));
      poller.push(await measureInChild(CHILD, 'poller', args));
      if (poller.at(-1)?.['fetched'] !== 0)
        throw new Error('repoll: the re-poll fetched files; the ledger seed is wrong');
    }
    const result: RepollResult = {
      case: 'repoll',
      entries: opts.entries,
      server: 'vsftpd (LIST, no MLSD)',
      reps: opts.reps,
      bareMs: bare.map((m) => m.ms),
      pollerMs: poller.map((m) => m.ms),
      bareRssMb: bare.map((m) => m.maxRssMb),
      pollerRssMb: poller.map((m) => m.maxRssMb),
      ratio: median(poller.map((m) => m.ms)) / median(bare.map((m) => m.ms)),
      goal: { ratio: 1.15, rssMb: 150 },
    };
    printTable(
      ['case', 'tool', 'median ms', 'spread %', 'peak RSS MB', 'ratio poller/peer', 'goal'],
      [
        [
          'repoll 100k',
          'basic-ftp list',
          fmt(median(result.bareMs), 0),
          fmt(spreadPct(result.bareMs), 0),
          fmt(Math.max(...result.bareRssMb), 0),
          '',
          '',
        ],
        [
          'repoll 100k',
          'poller cycle',
          fmt(median(result.pollerMs), 0),
          fmt(spreadPct(result.pollerMs), 0),
          fmt(Math.max(...result.pollerRssMb), 0),
          fmt(result.ratio),
          '<= 1.15, <= 150 MB',
        ],
      ],
    );
    return result;
  } finally {
    await server.close();
    await account.remove();
    await rm(work, { recursive: true, force: true });
  }
}
