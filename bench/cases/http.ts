/**
 * Cases over HTTP (nginx and lighttpd on 127.0.0.1, started here):
 * - `http-many`: 2,000 files x 100 KiB in 20 directories of an nginx autoindex, 8 connections;
 *   poller against the undici floor (bench/floors/http-undici.ts), `rclone copy :http:` and
 *   `wget -r`. Goals: >= 1.0x rclone and wget in files/s, CPU <= 1.5x rclone's.
 * - `http-repoll`: a no-change re-poll of a 10,000-entry lighttpd index (abbreviated sizes, so a
 *   new file costs a HEAD), side by side with rclone (`copy :http:` again) and `wget -r -N`; the
 *   requests about files in each re-poll are counted from the server's access log. Goal: none.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { httpServerMissing, startWebServer } from '../../test/helpers/http-servers.js';
import { writeFlatTree } from '../lib/data.js';
import { undiciFloor } from '../lib/node-floors.js';
import { rcloneHttp, wgetRecursive } from '../lib/peers.js';
import { POLLER_BIN, pollerContenders } from '../lib/poller-cli.js';
import {
  type CaseOutcome,
  type Contender,
  cpuGoal,
  expectTree,
  printGoals,
  printSideBySide,
  ratioGoal,
  rssGoal,
  runSideBySide,
} from '../lib/side-by-side.js';
import { missingTools, runTimed, type TimedCommand, type TimedRun } from '../lib/timed.js';

const FILE_BYTES = 100 * 1024;
const DIRS = 20;
const PARALLEL = 8;

export async function benchHttpMany(opts: { reps: number; scale: number }): Promise<CaseOutcome | undefined> {
  const missing = [httpServerMissing('nginx-html'), ...missingTools(['rclone', 'wget', '/usr/bin/time'])].filter(
    Boolean,
  );
  if (missing.length > 0) {
    console.log(`http-many: skipped: missing ${missing.join(', ')}; run scripts/install-http-servers.sh`);
    return undefined;
  }
  const files = Math.max(DIRS, Math.round(2000 * opts.scale));
  const web = await startWebServer('nginx-html');
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-http-'));
  try {
    await writeFlatTree(path.join(web.root, 'many'), files, DIRS, FILE_BYTES, new Date(Date.now() - 3_600_000));
    const url = `http://127.0.0.1:${web.port}/many/`;
    const expect = { files, bytes: files * FILE_BYTES };
    const label = `${files} files x 100 KiB in ${DIRS} dirs, ${PARALLEL} connections, nginx autoindex`;
    console.log(`http-many: ${label}`);
    const result = await runSideBySide({
      name: 'http-many',
      label,
      unit: 'files/s',
      work: files,
      reps: opts.reps,
      scratch,
      contenders: [
        ...pollerContenders({
          source: { url, concurrency: PARALLEL, maxConnections: PARALLEL, maxFilesPerPoll: 1_000_000 },
          expectFiles: expect.files,
          expectBytes: expect.bytes,
        }),
        undiciFloor(url, PARALLEL, expect),
        rcloneHttp(url, PARALLEL, expect),
        wgetRecursive(url, 1, expect),
      ],
    });
    printSideBySide(result);
    const goals = [
      ratioGoal(result, 1.0, 'rclone'),
      ratioGoal(result, 1.0, 'wget'),
      cpuGoal(result, 1.5, 'rclone'),
      rssGoal(result, 150),
    ];
    printGoals(goals);
    return { result, goals };
  } finally {
    await web.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

export interface HttpRepollOutcome extends CaseOutcome {
  /** Requests about files (HEAD, or GET of a file) in each re-poll, per tool. */
  fileRequests: Record<string, number[]>;
}

/** Where a contender keeps what its first (untimed) copy left: the re-polls start from it. */
interface Prepared {
  /** Runs the first copy once; later calls return at once. */
  prepare(): Promise<void>;
  /** The timed re-poll. */
  repoll(): TimedCommand;
  /** Throws unless the re-poll was a no-change one with every file still there. */
  check(run: TimedRun): Promise<void>;
}

/**
 * A no-change re-poll side by side: each tool copies the index once (untimed), then every
 * repetition re-runs it against what it already has, interleaved with the others. The requests
 * about files in each re-poll are counted from lighttpd's access log.
 */
export async function benchHttpRepoll(opts: { reps: number; entries: number }): Promise<HttpRepollOutcome | undefined> {
  const missing = [httpServerMissing('lighttpd'), ...missingTools(['rclone', 'wget', '/usr/bin/time'])].filter(Boolean);
  if (missing.length > 0) {
    console.log(`http-repoll: skipped: missing ${missing.join(', ')}; run scripts/install-http-servers.sh`);
    return undefined;
  }
  const web = await startWebServer('lighttpd');
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-http-repoll-'));
  try {
    const entries = opts.entries;
    await writeFlatTree(path.join(web.root, 'big'), entries, 1, 64, new Date(Date.now() - 3_600_000));
    const url = `http://127.0.0.1:${web.port}/big/`;
    const { writeFile, mkdir } = await import('node:fs/promises');
    const { stringify } = await import('yaml');
    const once = (fn: () => Promise<void>) => {
      let done: Promise<void> | undefined;
      return () => (done ??= fn());
    };
    const mustSucceed = async (what: string, c: TimedCommand) => {
      const r = await runTimed(c);
      if (r.exitCode !== 0) throw new Error(`${what} exited ${r.exitCode}: ${(r.stderr || r.stdout).slice(-400)}`);
      return r;
    };
    const pollerPrepared = (name: string, bin: string): Prepared => {
      const dir = path.join(scratch, `state-${name}`);
      const configPath = path.join(dir, 'poller.yaml');
      const command = (): TimedCommand => ({
        command: process.execPath,
        args: [bin, 'run-once', '--config', configPath, '--json'],
      });
      return {
        prepare: once(async () => {
          await mkdir(dir, { recursive: true });
          await writeFile(
            configPath,
            stringify({
              landing: path.join(dir, 'landing'),
              ledger: path.join(dir, 'ledger.db'),
              sources: [{ name: 'bench', url, concurrency: 8, maxConnections: 8, maxFilesPerPoll: 1_000_000 }],
            }),
          );
          await mustSucceed(`${name} first run`, command());
          await expectTree(name, path.join(dir, 'landing'), entries, entries * 64);
        }),
        repoll: command,
        async check(run) {
          const s = (JSON.parse(run.stdout) as { sources: Array<{ fetched: number; failed: number; error?: unknown }> })
            .sources[0];
          if (!s || s.error || s.fetched !== 0 || s.failed !== 0)
            throw new Error(`${name}: re-poll summary ${JSON.stringify(s)}, expected nothing fetched`);
        },
      };
    };
    const peerPrepared = (name: string, command: (out: string) => TimedCommand): Prepared => {
      const out = path.join(scratch, `state-${name}`, 'out');
      return {
        prepare: once(async () => {
          await mkdir(out, { recursive: true });
          await mustSucceed(`${name} first copy`, command(out));
          await expectTree(name, out, entries, entries * 64);
        }),
        repoll: () => command(out),
        check: () => expectTree(name, out, entries, entries * 64),
      };
    };
    const tools: Array<[string, Prepared]> = [
      ['poller', pollerPrepared('poller', POLLER_BIN)],
      ...(process.env['BENCH_BASELINE']
        ? ([
            [
              'baseline',
              pollerPrepared('baseline', path.join(path.resolve(process.env['BENCH_BASELINE']), 'bin', 'poller.js')),
            ],
          ] as Array<[string, Prepared]>)
        : []),
      // rclone's defaults: it HEADs each file of an index to learn size and time (no --http-no-head).
      [
        'rclone',
        peerPrepared('rclone', (out) => ({
          command: 'rclone',
          args: ['copy', ':http:', out, '--transfers', '8', '--checkers', '8'],
          env: { RCLONE_CONFIG: '/dev/null', RCLONE_HTTP_URL: url },
        })),
      ],
      // wget -N: a conditional request per file (If-Modified-Since), answered 304.
      [
        'wget',
        peerPrepared('wget', (out) => ({
          command: 'wget',
          args: [
            '-r',
            '-N',
            '-np',
            '-nH',
            '--cut-dirs=1',
            '-q',
            '-e',
            'robots=off',
            '--reject',
            'index.html*',
            '-P',
            out,
            url,
          ],
        })),
      ],
    ];
    const fileRequests: Record<string, number[]> = {};
    let mark = 0;
    const contenders: Contender[] = tools.map(([name, t]) => ({
      name,
      async command() {
        await t.prepare();
        mark = (await web.accessLog()).length;
        return t.repoll();
      },
      async verify(_dest, run) {
        await t.check(run);
        const log = (await web.accessLog()).slice(mark);
        const n = log.filter((l) => l.startsWith('HEAD ') || (l.startsWith('GET ') && !l.endsWith('/'))).length;
        fileRequests[name] = [...(fileRequests[name] ?? []), n];
        return { fileRequests: n };
      },
    }));
    const label = `no-change re-poll of ${entries} entries in one lighttpd index (abbreviated sizes)`;
    console.log(`http-repoll: ${label}`);
    const result = await runSideBySide({
      name: 'http-repoll',
      label,
      unit: 'entries/s',
      work: entries,
      reps: opts.reps,
      scratch,
      contenders,
    });
    printSideBySide(result);
    const heads = fileRequests['poller'] ?? [];
    const goals = [
      {
        goal: `no request about an unchanged file on a re-poll of ${entries} entries`,
        actual: `${heads.join(', ')} (rclone ${(fileRequests['rclone'] ?? []).join(', ')}, wget ${(fileRequests['wget'] ?? []).join(', ')})`,
        met: heads.length > 0 && heads.every((h) => h === 0),
      },
    ];
    printGoals(goals);
    return { result, goals, fileRequests };
  } finally {
    await web.close();
    await rm(scratch, { recursive: true, force: true });
  }
}
