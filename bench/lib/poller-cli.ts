/**
 * poller as a contender: the real CLI, `node bin/poller.js run-once --config <generated> --json`,
 * with a fresh ledger and landing directory per repetition. A run counts only when its JSON
 * summary and its ledger both say every file was fetched and processed, and the landing tree
 * holds exactly the expected files and bytes.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import type { Contender } from './side-by-side.js';
import { expectTree } from './side-by-side.js';
import type { TimedRun } from './timed.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const POLLER_BIN = path.join(REPO_ROOT, 'bin', 'poller.js');

/** Env variable the generated config reads the password from, so no secret sits in the file. */
export const PASSWORD_ENV = 'POLLER_BENCH_PASSWORD';

export interface PollerContenderOptions {
  /** The source entry of the config, without `name` and `password`. */
  source: Record<string, unknown>;
  password?: string;
  expectFiles: number;
  expectBytes: number;
  /** `--log-level`; info keeps the `file.fetched` lines. */
  logLevel?: string;
  /** Extra figures from the run (e.g. from the log lines on stderr). */
  extra?: (run: TimedRun, dest: string) => Promise<Record<string, number>> | Record<string, number>;
  /** Another ledger than a fresh SQLite file per repetition (a fresh PostgreSQL database). */
  ledger?: PollerLedgerChoice;
}

/** Where a repetition's ledger lives, and how many files it holds processed. */
export interface PollerLedgerChoice {
  /** The `ledger:` of the repetition writing into `dest`. */
  url(dest: string): Promise<string>;
  processed(url: string): Promise<number>;
}

/** One parsed JSON log line of poller. */
export interface PollerLogLine {
  event?: string;
  path?: string;
  time?: string | number;
  [k: string]: unknown;
}

/** poller's JSON log lines (stderr), skipping anything that is not JSON. */
export function pollerLogLines(stderr: string): PollerLogLine[] {
  const out: PollerLogLine[] = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as PollerLogLine);
    } catch {
      // A partial line: ignore.
    }
  }
  return out;
}

/** Epoch ms of a log line's `time` (pino ISO time or epoch number). */
export function logTimeMs(line: PollerLogLine): number {
  return typeof line.time === 'number' ? line.time : Date.parse(String(line.time));
}

/** `BENCH_PROFILE=<dir>`: each poller run writes a V8 CPU profile there (`node bench/profile-top.js <file>` summarises it). */
export function profileFlags(): string[] {
  const dir = process.env['BENCH_PROFILE'];
  return dir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(dir)] : [];
}

/**
 * The node flags a bin's shebang line gives (`#!/usr/bin/env -S node --flag`): the bench starts
 * `node <those> <bin>` so that poller runs with the flags its users get from `poller ...`.
 */
function shebangFlags(bin: string): string[] {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env -S node (.*)$/.exec(first.trim());
  return m?.[1] ? m[1].split(/\s+/).filter(Boolean) : [];
}

interface RunOnceJson {
  sources: Array<{ name: string; fetched: number; processed: number; failed: number; error?: { message: string } }>;
}

/**
 * poller, and with `BENCH_BASELINE=<another checkout, built>` that checkout's poller as a second
 * contender (`baseline`), interleaved with this one: an A/B of two versions in one run.
 */
export function pollerContenders(opts: PollerContenderOptions): Contender[] {
  const base = process.env['BENCH_BASELINE'];
  return [
    pollerContender(opts),
    ...(base
      ? [pollerContender(opts, { name: 'baseline', bin: path.join(path.resolve(base), 'bin', 'poller.js') })]
      : []),
  ];
}

export function pollerContender(
  opts: PollerContenderOptions,
  as: { name: string; bin: string } = { name: 'poller', bin: POLLER_BIN },
): Contender {
  const ledgers = new Map<string, string>();
  return {
    name: as.name,
    async command(dest) {
      const configPath = path.join(dest, 'poller.yaml');
      const ledger = opts.ledger ? await opts.ledger.url(dest) : path.join(dest, 'ledger.db');
      ledgers.set(dest, ledger);
      const config = {
        landing: path.join(dest, 'landing'),
        ledger,
        sources: [
          {
            name: 'bench',
            ...opts.source,
            ...(opts.password !== undefined && { password: `\${${PASSWORD_ENV}}` }),
          },
        ],
      };
      await writeFile(configPath, stringify(config));
      return {
        command: process.execPath,
        args: [
          ...shebangFlags(as.bin),
          ...profileFlags(),
          as.bin,
          'run-once',
          '--config',
          configPath,
          '--json',
          ...(opts.logLevel ? ['--log-level', opts.logLevel] : []),
        ],
        env: opts.password !== undefined ? { [PASSWORD_ENV]: opts.password } : ({} as Record<string, string>),
      };
    },
    async verify(dest, run) {
      const summary = JSON.parse(run.stdout) as RunOnceJson;
      const s = summary.sources[0];
      if (!s || s.error || s.failed !== 0 || s.fetched !== opts.expectFiles || s.processed !== opts.expectFiles)
        throw new Error(
          `poller: summary says ${JSON.stringify(s)}, expected ${opts.expectFiles} fetched and processed`,
        );
      const n = opts.ledger
        ? await opts.ledger.processed(ledgers.get(dest) ?? '')
        : sqliteProcessed(path.join(dest, 'ledger.db'));
      if (n !== opts.expectFiles)
        throw new Error(`${as.name}: the ledger has ${n} processed files, expected ${opts.expectFiles}`);
      await expectTree('poller', path.join(dest, 'landing'), opts.expectFiles, opts.expectBytes);
      return opts.extra ? await opts.extra(run, dest) : {};
    },
  };
}

function sqliteProcessed(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT COUNT(*) AS n FROM files WHERE state = 'processed'").get() as { n: number }).n;
  } finally {
    db.close();
  }
}
