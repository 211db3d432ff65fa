/**
 * Case: no-change re-poll of a 100,000-entry remote directory (vsftpd on 127.0.0.1), against the
 * bare listing by basic-ftp in the same run. Goal: poller <= 1.15x the bare listing, <= 150 MB RSS.
 */
import { closeSync, openSync, utimesSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServerAccount, realServerSupport, startVsftpd } from '../../test/helpers/debian-ftp.js';
import { type ChildMeasure, measureInChild } from '../lib/child.js';
import { outDir } from '../lib/peers.js';
import { PASSWORD_ENV, POLLER_BIN, profileFlags } from '../lib/poller-cli.js';
import { type Contender, printSideBySide, runSideBySide, type SideBySideResult } from '../lib/side-by-side.js';
import { fmt, median, printTable, spreadPct } from '../lib/stats.js';
import { missingTools } from '../lib/timed.js';
import type { RepollArgs } from './repoll-child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'repoll-child.js');

export interface RepollResult {
  case: 'repoll';
  entries: number;
  server: string;
  reps: number;
  measures: Record<string, { ms: number[]; rssMb: number[] }>;
  ratioCold: number;
  ratioWarm: number;
  /** `poller run-once` (the CLI, under GNU time) against `curl` LIST, interleaved; absent without curl. */
  cli?: SideBySideResult;
  /** Median wall time of `poller run-once` over curl's LIST. */
  ratioCliCurl?: number;
  goal: { ratio: number; rssMb: number };
}

/** `entries` empty BUFR-named files, three days old, in one directory (the re-polled listing). */
export async function writeRepollTree(dir: string, entries: number): Promise<void> {
  await mkdir(dir);
  const mtime = new Date(Date.now() - 3 * 86_400_000);
  for (let i = 0; i < entries; i++) {
    const file = path.join(dir, `T_PAGB41_C_${String(i).padStart(7, '0')}.bufr`);
    closeSync(openSync(file, 'w'));
    utimesSync(file, mtime, mtime);
  }
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
    await writeRepollTree(path.join(account.root, dir), opts.entries);
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
    const runs: Record<string, ChildMeasure[]> = { bare: [], poller: [], 'bare-warm': [], 'poller-warm': [] };
    // Interleaved A B A B, each in a fresh process.
    for (let r = 0; r < opts.reps; r++) {
      for (const mode of Object.keys(runs)) {
        const m = await measureInChild(CHILD, mode, args);
        if (mode.startsWith('poller') && m['fetched'] !== 0)
          throw new Error('repoll: the re-poll fetched files; the ledger seed is wrong');
        runs[mode]?.push(m);
      }
    }
    const ms = (mode: string) => (runs[mode] ?? []).map((m) => m.ms);
    const rss = (mode: string) => (runs[mode] ?? []).map((m) => m.maxRssMb);
    const result: RepollResult = {
      case: 'repoll',
      entries: opts.entries,
      server: 'vsftpd (LIST, no MLSD)',
      reps: opts.reps,
      measures: Object.fromEntries(Object.keys(runs).map((k) => [k, { ms: ms(k), rssMb: rss(k) }])),
      ratioCold: median(ms('poller')) / median(ms('bare')),
      ratioWarm: median(ms('poller-warm')) / median(ms('bare-warm')),
      goal: { ratio: 1.15, rssMb: 150 },
    };
    const row = (label: string, mode: string, ratio?: number): string[] => [
      `repoll ${opts.entries / 1000}k`,
      label,
      fmt(median(ms(mode)), 0),
      fmt(spreadPct(ms(mode)), 0),
      fmt(Math.max(...rss(mode)), 0),
      ratio === undefined ? '' : fmt(ratio),
    ];
    printTable(
      ['case', 'run', 'median ms', 'spread %', 'peak RSS MB', 'poller/bare'],
      [
        row('bare basic-ftp: connect + list', 'bare'),
        row('poller run-once: connect + list + diff', 'poller', result.ratioCold),
        row('bare basic-ftp: 2nd list, same connection', 'bare-warm'),
        row('poller daemon: 2nd cycle, same process', 'poller-warm', result.ratioWarm),
      ],
    );
    if (missingTools(['curl', '/usr/bin/time']).length === 0) {
      // The whole CLI (process start, config, ledger open) against curl's LIST, both under GNU time.
      const cli = await runSideBySide({
        name: 'repoll-cli',
        label: `no-change re-poll of ${opts.entries} entries: poller run-once vs curl LIST`,
        unit: 'entries/s',
        work: opts.entries,
        reps: opts.reps,
        scratch: work,
        contenders: [cliRepoll(args, opts.entries), curlList(args, opts.entries)],
      });
      printSideBySide(cli);
      result.cli = cli;
      const t = (name: string) => median(cli.contenders.find((c) => c.name === name)?.wallMs ?? [Number.NaN]);
      result.ratioCliCurl = t('poller') / t('curl');
      console.log(`poller run-once / curl LIST (time): ${fmt(result.ratioCliCurl)}`);
    }
    console.log(`goal: <= ${result.goal.ratio}x the bare listing, <= ${result.goal.rssMb} MB peak RSS`);
    return result;
  } finally {
    await server.close();
    await account.remove();
    await rm(work, { recursive: true, force: true });
  }
}

/** `poller run-once` on the seeded ledger: lists, diffs, fetches nothing. */
function cliRepoll(a: RepollArgs, entries: number): Contender {
  return {
    name: 'poller',
    async command(dest) {
      const config = path.join(dest, 'poller.yaml');
      const source = [
        '  - name: bench',
        `    url: ftp://${a.user}@${a.host}:${a.port}/${a.dir}`,
        `    password: \${${PASSWORD_ENV}}`,
        "    include: '*.bufr'",
        '    stableListings: 1',
        '    maxConnections: 1',
      ];
      await writeFile(config, [`landing: ${a.landing}`, `ledger: ${a.ledger}`, 'sources:', ...source, ''].join('\n'));
      return {
        command: process.execPath,
        args: [...profileFlags(), POLLER_BIN, 'run-once', '--config', config, '--json'],
        env: { [PASSWORD_ENV]: a.password },
      };
    },
    async verify(_dest, run) {
      const s = (JSON.parse(run.stdout) as { sources: Array<{ listed: number; fetched: number }> }).sources[0];
      if (s?.listed !== entries || s.fetched !== 0)
        throw new Error(`poller: re-poll listed ${s?.listed} and fetched ${s?.fetched}; expected ${entries} and 0`);
      return {};
    },
  };
}

/** `curl` LIST of the directory into a file. */
function curlList(a: RepollArgs, entries: number): Contender {
  return {
    name: 'curl',
    async command(dest) {
      await mkdir(outDir(dest), { recursive: true });
      return {
        command: 'curl',
        args: [
          '-sS',
          '--user',
          `${a.user}:${a.password}`,
          `ftp://${a.host}:${a.port}/${a.dir}/`,
          '-o',
          path.join(outDir(dest), 'list.txt'),
        ],
      };
    },
    async verify(dest) {
      const lines = (await readFile(path.join(outDir(dest), 'list.txt'), 'utf8')).split('\n').filter(Boolean).length;
      if (lines !== entries) throw new Error(`curl: LIST gave ${lines} lines, expected ${entries}`);
      return {};
    },
  };
}
