/**
 * Case `pg`: the PostgreSQL ledger.
 * 1. The many-files job (2,000 x 100 KiB in 20 directories from vsftpd, 8 connections) by
 *    `poller run-once` on a SQLite ledger and on a PostgreSQL ledger (a fresh database per
 *    repetition on a server this case starts on 127.0.0.1), interleaved. Goals: PostgreSQL >= 0.9x
 *    SQLite's files/s, poller's CPU <= 1.1x. The server's CPU is reported apart (it is not in poller's CPU s).
 * 2. The 3-instance speed-up: `poller run` daemons on one PostgreSQL database against an FTP
 *    server whose every download waits before it starts (latency-bound, not CPU-bound), one
 *    instance alone vs three, timed from their start until the ledger has every file processed.
 *    Goal: three >= 2.5x one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { createServerAccount, realServerSupport, startVsftpd } from '../../test/helpers/debian-ftp.js';
import { startFtpServer } from '../../test/helpers/ftp-server.js';
import { writeFlatTree, writeRandomFile } from '../lib/data.js';
import { PASSWORD_ENV, POLLER_BIN, pollerContender } from '../lib/poller-cli.js';
import { type BenchPostgres, startBenchPostgres } from '../lib/postgres.js';
import {
  type CaseOutcome,
  type Contender,
  type ContenderResult,
  cpuRatio,
  expectTree,
  printGoals,
  printSideBySide,
  rateRatio,
  runSideBySide,
  type SideBySideResult,
} from '../lib/side-by-side.js';
import { fmt, median } from '../lib/stats.js';
import { missingTools } from '../lib/timed.js';

const FILE_BYTES = 100 * 1024;
const DIRS = 20;
const PARALLEL = 8;
/** The delayed server of the speed-up: each RETR waits this long, 4 transfers per instance. */
const RETR_DELAY_MS = 300;
const SPEEDUP_FILE_BYTES = 16 * 1024;
const SPEEDUP_CONCURRENCY = 4;

export async function benchPostgres(opts: {
  reps: number;
  scale: number;
  parts?: { many: boolean; speedUp: boolean };
}): Promise<CaseOutcome[] | undefined> {
  const parts = opts.parts ?? { many: true, speedUp: true };
  const pg = await startBenchPostgres();
  if (typeof pg === 'string') {
    console.log(`pg: skipped: ${pg}`);
    return undefined;
  }
  try {
    const out: CaseOutcome[] = [];
    const many = parts.many ? await manyFiles(pg, opts) : undefined;
    if (many) out.push(many);
    if (parts.speedUp) out.push(await speedUp(pg, opts));
    return out;
  } finally {
    await pg.stop();
  }
}

async function manyFiles(pg: BenchPostgres, opts: { reps: number; scale: number }): Promise<CaseOutcome | undefined> {
  const support = realServerSupport();
  const missing = missingTools(['/usr/bin/time']);
  if (!support.vsftpd.available || missing.length > 0) {
    console.log(`pg-many: skipped: ${support.vsftpd.reason ?? `missing ${missing.join(', ')}`}`);
    return undefined;
  }
  const files = Math.max(DIRS, Math.round(2000 * opts.scale));
  const account = await createServerAccount();
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-pg-many-'));
  const server = await startVsftpd({ account, tls: 'none' });
  try {
    await writeFlatTree(path.join(account.root, 'many'), files, DIRS, FILE_BYTES, new Date(Date.now() - 3_600_000));
    const base = {
      source: {
        url: `ftp://${account.user}@${server.host}:${server.port}/many`,
        concurrency: PARALLEL,
        maxConnections: PARALLEL,
      },
      password: account.password,
      expectFiles: files,
      expectBytes: files * FILE_BYTES,
    };
    const sqlite = pollerContender(base, { name: 'poller-sqlite', bin: POLLER_BIN });
    const onPg = pollerContender(
      { ...base, ledger: { url: () => pg.database(), processed: (url) => pg.processed(url) } },
      { name: 'poller-pg', bin: POLLER_BIN },
    );
    // The server's CPU of each repetition, apart from poller's own.
    const serverCpu = new Map<string, number>();
    const withServerCpu: Contender = {
      name: onPg.name,
      async command(dest) {
        const cmd = await onPg.command(dest);
        serverCpu.set(dest, pg.cpuS());
        return cmd;
      },
      async verify(dest, run) {
        const extra = await onPg.verify(dest, run);
        // Backends exit just after the client: let the server reap them before reading its CPU.
        await new Promise((r) => setTimeout(r, 500));
        return { ...extra, pgServerCpuS: pg.cpuS() - (serverCpu.get(dest) ?? 0) };
      },
    };
    console.log(`pg-many: ${files} files x ${FILE_BYTES / 1024} KiB in ${DIRS} dirs, ${PARALLEL} connections, vsftpd`);
    const result = await runSideBySide({
      name: 'pg-many',
      label: `${files} files x 100 KiB in ${DIRS} dirs, ${PARALLEL} connections, vsftpd: SQLite vs PostgreSQL ledger`,
      unit: 'files/s',
      work: files,
      reps: opts.reps,
      scratch,
      contenders: [sqlite, withServerCpu],
    });
    printSideBySide(result);
    const speed = rateRatio(result, 'poller-sqlite', 'poller-pg');
    const cpu = cpuRatio(result, 'poller-sqlite', 'poller-pg');
    const serverS = median(result.contenders.find((c) => c.name === 'poller-pg')?.extra['pgServerCpuS'] ?? []);
    const goals = [
      {
        goal: "PostgreSQL ledger >= 0.9x SQLite's files/s",
        actual: `${fmt(speed)}x`,
        met: speed >= 0.9,
      },
      {
        goal: "poller CPU s on PostgreSQL <= 1.1x SQLite's",
        actual: `${fmt(cpu)}x, plus ${fmt(serverS)} CPU s in the PostgreSQL server`,
        met: cpu <= 1.1,
      },
    ];
    printGoals(goals);
    return { result, goals };
  } finally {
    await server.close();
    await account.remove();
    await rm(scratch, { recursive: true, force: true });
  }
}

interface Instance {
  child: ChildProcess;
  stderr: string;
}

/** CPU seconds and peak RSS of a live process, from /proc. */
function procFigures(pid: number): { cpuS: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuS: (Number(f[11]) + Number(f[12])) / 100, rssMb: hwm / 1024 };
}

async function speedUp(pg: BenchPostgres, opts: { reps: number; scale: number }): Promise<CaseOutcome> {
  const files = Math.max(30, Math.round(360 * opts.scale));
  const ftp = await startFtpServer({ faults: { retrDelayMs: RETR_DELAY_MS } });
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-pg-speedup-'));
  const mtime = new Date(Date.now() - 3_600_000);
  try {
    for (let i = 0; i < files; i++)
      await writeRandomFile(
        path.join(ftp.root, 'feed', `f${String(i).padStart(5, '0')}.bin`),
        SPEEDUP_FILE_BYTES,
        mtime,
      );
    const label = `${files} files x 16 KiB, every RETR delayed ${RETR_DELAY_MS} ms, ${SPEEDUP_CONCURRENCY} transfers per instance, ftp-srv`;
    console.log(`pg-speedup: ${label}`);
    const contenders: ContenderResult[] = [1, 3].map((n) => ({
      name: n === 1 ? '1 instance' : `${n} instances`,
      wallMs: [],
      cpuS: [],
      rssMb: [],
      rate: [],
      extra: {},
    }));
    for (let rep = 1; rep <= opts.reps; rep++) {
      for (const [i, n] of [1, 3].entries()) {
        const dest = await mkdtemp(path.join(scratch, 'rep-'));
        const url = await pg.database();
        const r = await runInstances(n, url, dest, ftp, files, pg);
        await expectTree(`${n} instances`, path.join(dest, 'landing'), files, files * SPEEDUP_FILE_BYTES);
        const c = contenders[i]!;
        c.wallMs.push(r.wallMs);
        c.cpuS.push(r.cpuS);
        c.rssMb.push(r.rssMb);
        c.rate.push(files / (r.wallMs / 1000));
        console.log(
          `  rep ${rep} ${c.name}: ${fmt(r.wallMs / 1000)} s, ${fmt(files / (r.wallMs / 1000), 1)} files/s, CPU ${fmt(r.cpuS)} s`,
        );
        await rm(dest, { recursive: true, force: true });
      }
    }
    // Each file once from the server over every repetition.
    const served = ftp.retrieved().length;
    if (served !== files * 2 * opts.reps)
      throw new Error(`pg-speedup: the server sent ${served} files, expected ${files * 2 * opts.reps}`);
    const result: SideBySideResult = {
      case: 'pg-speedup',
      label,
      unit: 'files/s',
      work: files,
      reps: opts.reps,
      contenders,
    };
    printSideBySide(result);
    const ratio = rateRatio(result, '1 instance', '3 instances');
    const goals = [{ goal: '3 instances >= 2.5x one (files/s)', actual: `${fmt(ratio)}x`, met: ratio >= 2.5 }];
    printGoals(goals);
    return { result, goals };
  } finally {
    await ftp.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

/** `n` daemons on one database and landing root until every file is processed; then stopped. */
async function runInstances(
  n: number,
  url: string,
  dest: string,
  ftp: { user: string; password: string; port: number },
  files: number,
  pg: BenchPostgres,
): Promise<{ wallMs: number; cpuS: number; rssMb: number }> {
  const configs: string[] = [];
  for (let i = 0; i < n; i++) {
    const file = path.join(dest, `poller-${i}.yaml`);
    await writeFile(
      file,
      stringify({
        landing: path.join(dest, 'landing'),
        ledger: url,
        instance: `bench-${i}`,
        log: { level: 'warn' },
        sources: [
          {
            name: 'bench',
            url: `ftp://${ftp.user}@127.0.0.1:${ftp.port}/feed`,
            password: `\${${PASSWORD_ENV}}`,
            every: '1s',
            concurrency: SPEEDUP_CONCURRENCY,
            maxConnections: SPEEDUP_CONCURRENCY,
            // Small batches: instances take turns at the due files.
            maxFilesPerPoll: 2 * SPEEDUP_CONCURRENCY,
          },
        ],
      }),
    );
    configs.push(file);
  }
  const t0 = performance.now();
  const instances: Instance[] = configs.map((c) => {
    const child = spawn(process.execPath, [POLLER_BIN, 'run', '--config', c], {
      env: { ...process.env, [PASSWORD_ENV]: ftp.password },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const inst: Instance = { child, stderr: '' };
    child.stderr?.on('data', (d: Buffer) => {
      inst.stderr = (inst.stderr + d.toString()).slice(-4000);
    });
    return inst;
  });
  try {
    // Bounded: ten minutes at most.
    for (let i = 0; ; i++) {
      if ((await pg.processed(url).catch(() => 0)) === files) break;
      const dead = instances.find((x) => x.child.exitCode !== null);
      if (dead) throw new Error(`pg-speedup: an instance exited: ${dead.stderr}`);
      if (i > 6000) throw new Error('pg-speedup: not every file processed after 10 min');
      await new Promise((r) => setTimeout(r, 100));
    }
    const wallMs = performance.now() - t0;
    const figures = instances.map((x) => procFigures(x.child.pid!));
    return {
      wallMs,
      cpuS: figures.reduce((s, f) => s + f.cpuS, 0),
      rssMb: Math.max(...figures.map((f) => f.rssMb)),
    };
  } finally {
    for (const x of instances) x.child.kill('SIGTERM');
    await Promise.all(
      instances.map((x) => (x.child.exitCode !== null ? undefined : new Promise((r) => x.child.once('exit', r)))),
    );
  }
}
