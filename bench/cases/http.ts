/**
 * Cases over HTTP (nginx and lighttpd on 127.0.0.1, started here):
 * - `http-many`: 2,000 files x 100 KiB in 20 directories of an nginx autoindex, 8 connections;
 *   poller against `rclone copy :http:` and `wget -r`. Goal: >= 1.25x rclone in files/s.
 * - `http-repoll`: a no-change re-poll of a 10,000-entry lighttpd index (abbreviated sizes, so a
 *   new file costs a HEAD): the HEAD requests of the re-poll are counted from the server's access
 *   log. Goal: zero.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { httpServerMissing, startWebServer } from '../../test/helpers/http-servers.js';
import { writeFlatTree } from '../lib/data.js';
import { rcloneHttp, wgetRecursive } from '../lib/peers.js';
import { POLLER_BIN, pollerContender } from '../lib/poller-cli.js';
import {
  type CaseOutcome,
  printGoals,
  printSideBySide,
  ratioGoal,
  rssGoal,
  runSideBySide,
} from '../lib/side-by-side.js';
import { median } from '../lib/stats.js';
import { missingTools, runTimed } from '../lib/timed.js';

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
        pollerContender({
          source: { url, concurrency: PARALLEL, maxConnections: PARALLEL, maxFilesPerPoll: 1_000_000 },
          expectFiles: expect.files,
          expectBytes: expect.bytes,
        }),
        rcloneHttp(url, PARALLEL, expect),
        wgetRecursive(url, 1, expect),
      ],
    });
    printSideBySide(result);
    const goals = [ratioGoal(result, 1.25, 'rclone'), rssGoal(result, 150)];
    printGoals(goals);
    return { result, goals };
  } finally {
    await web.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

export interface HttpRepollResult {
  case: 'http-repoll';
  entries: number;
  firstRun: { wallS: number; heads: number };
  repoll: { wallS: number[]; cpuS: number[]; heads: number[]; indexGets: number[] };
}

export async function benchHttpRepoll(opts: { reps: number; entries: number }): Promise<HttpRepollResult | undefined> {
  const missing = httpServerMissing('lighttpd');
  if (missing !== undefined) {
    console.log(`http-repoll: skipped: ${missing}`);
    return undefined;
  }
  const web = await startWebServer('lighttpd');
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-http-repoll-'));
  try {
    await writeFlatTree(path.join(web.root, 'big'), opts.entries, 1, 64, new Date(Date.now() - 3_600_000));
    const { writeFile } = await import('node:fs/promises');
    const { stringify } = await import('yaml');
    const configPath = path.join(scratch, 'poller.yaml');
    await writeFile(
      configPath,
      stringify({
        landing: path.join(scratch, 'landing'),
        ledger: path.join(scratch, 'ledger.db'),
        sources: [
          { name: 'bench', url: `http://127.0.0.1:${web.port}/big/`, concurrency: 8, maxFilesPerPoll: 1_000_000 },
        ],
      }),
    );
    const run = () =>
      runTimed({ command: process.execPath, args: [POLLER_BIN, 'run-once', '--config', configPath, '--json'] });
    const count = async (since: number) => {
      const log = (await web.accessLog()).slice(since);
      return {
        total: log.length,
        heads: log.filter((l) => l.startsWith('HEAD ')).length,
        indexGets: log.filter((l) => l.startsWith('GET ') && l.endsWith('/')).length,
      };
    };
    console.log(`http-repoll: ${opts.entries} entries in one lighttpd index (abbreviated sizes)`);
    const first = await run();
    const afterFirst = (await web.accessLog()).length;
    const c1 = await count(0);
    const out: HttpRepollResult = {
      case: 'http-repoll',
      entries: opts.entries,
      firstRun: { wallS: first.wallMs / 1000, heads: c1.heads },
      repoll: { wallS: [], cpuS: [], heads: [], indexGets: [] },
    };
    let seen = afterFirst;
    for (let i = 0; i < opts.reps; i++) {
      const r = await run();
      const c = await count(seen);
      seen += c.total;
      out.repoll.wallS.push(r.wallMs / 1000);
      out.repoll.cpuS.push(r.cpuS);
      out.repoll.heads.push(c.heads);
      out.repoll.indexGets.push(c.indexGets);
    }
    console.log(
      `  first run ${out.firstRun.wallS.toFixed(2)} s with ${out.firstRun.heads} HEAD; re-poll median ${median(out.repoll.wallS).toFixed(2)} s wall, ${median(out.repoll.cpuS).toFixed(2)} CPU s, HEAD requests per re-poll: ${out.repoll.heads.join(', ')} (goal 0)`,
    );
    return out;
  } finally {
    await web.close();
    await rm(scratch, { recursive: true, force: true });
  }
}
