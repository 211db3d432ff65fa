/**
 * Case `pg-repoll`: the no-change re-poll of a 100,000-entry vsftpd directory on a SQLite ledger
 * and on a PostgreSQL ledger (a server this case starts on 127.0.0.1), both seeded with every
 * file processed, interleaved A B A B in fresh processes: a `run-once` cycle (connect, list,
 * diff) and the daemon's second cycle in one process (connection and ledger open). Goal:
 * PostgreSQL within 1.2x of SQLite's time. CPU seconds are poller's own; the server's are
 * reported apart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServerAccount, realServerSupport, startVsftpd } from '../../test/helpers/debian-ftp.js';
import { type ChildMeasure, measureInChild } from '../lib/child.js';
import { startBenchPostgres } from '../lib/postgres.js';
import { fmt, median, printTable, spreadPct } from '../lib/stats.js';
import { writeRepollTree } from './repoll.js';
import type { RepollArgs } from './repoll-child.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'repoll-child.js');

export interface PgRepollResult {
  case: 'pg-repoll';
  entries: number;
  reps: number;
  measures: Record<string, { ms: number[]; cpuS: number[]; rssMb: number[]; pgServerCpuS?: number[] }>;
  /** Median time on PostgreSQL over SQLite's: the run-once cycle, and the daemon's warm cycle. */
  ratioCold: number;
  ratioWarm: number;
  cpuRatioCold: number;
  cpuRatioWarm: number;
  goal: { ratio: number };
}

export async function benchPgRepoll(opts: { entries: number; reps: number }): Promise<PgRepollResult | undefined> {
  const support = realServerSupport();
  if (!support.vsftpd.available) {
    console.log(`pg-repoll: skipped: ${support.vsftpd.reason}`);
    return undefined;
  }
  const pg = await startBenchPostgres();
  if (typeof pg === 'string') {
    console.log(`pg-repoll: skipped: ${pg}`);
    return undefined;
  }
  const account = await createServerAccount();
  const work = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-pg-repoll-'));
  const server = await startVsftpd({ account, tls: 'none' });
  try {
    const dir = 'big';
    await writeRepollTree(path.join(account.root, dir), opts.entries);
    await account.own();
    const base = { host: server.host, port: server.port, user: account.user, password: account.password, dir };
    const ledgers = {
      sqlite: { ...base, ledger: path.join(work, 'ledger.db'), landing: path.join(work, 'landing-sqlite') },
      pg: { ...base, ledger: await pg.database(), landing: path.join(work, 'landing-pg') },
    } satisfies Record<string, RepollArgs>;
    for (const [name, args] of Object.entries(ledgers)) {
      const seed = await measureInChild(CHILD, 'seed', args);
      console.log(`pg-repoll: ${name} seeded with ${seed['listed']} entries in ${fmt(seed.ms / 1000)} s`);
    }
    const modes = [
      { key: 'sqlite', args: ledgers.sqlite, mode: 'poller' },
      { key: 'pg', args: ledgers.pg, mode: 'poller' },
      { key: 'sqlite-warm', args: ledgers.sqlite, mode: 'poller-warm' },
      { key: 'pg-warm', args: ledgers.pg, mode: 'poller-warm' },
    ];
    const runs: Record<string, Array<ChildMeasure & { pgServerCpuS: number }>> = Object.fromEntries(
      modes.map((m) => [m.key, []]),
    );
    for (let r = 0; r < opts.reps; r++) {
      for (const m of modes) {
        const before = pg.cpuS();
        const got = await measureInChild(CHILD, m.mode, m.args);
        if (got['fetched'] !== 0 || got['listed'] !== opts.entries)
          throw new Error(`pg-repoll: ${m.key} listed ${got['listed']} and fetched ${got['fetched']}`);
        // Backends exit just after the client: let the server reap them before reading its CPU.
        await new Promise((res) => setTimeout(res, 300));
        runs[m.key]?.push({ ...got, pgServerCpuS: pg.cpuS() - before });
      }
    }
    const ms = (k: string) => (runs[k] ?? []).map((m) => m.ms);
    const cpu = (k: string) => (runs[k] ?? []).map((m) => Number(m['cpuS']));
    const result: PgRepollResult = {
      case: 'pg-repoll',
      entries: opts.entries,
      reps: opts.reps,
      measures: Object.fromEntries(
        modes.map((m) => [
          m.key,
          {
            ms: ms(m.key),
            cpuS: cpu(m.key),
            rssMb: (runs[m.key] ?? []).map((x) => x.maxRssMb),
            ...(m.key.startsWith('pg') && { pgServerCpuS: (runs[m.key] ?? []).map((x) => x.pgServerCpuS) }),
          },
        ]),
      ),
      ratioCold: median(ms('pg')) / median(ms('sqlite')),
      ratioWarm: median(ms('pg-warm')) / median(ms('sqlite-warm')),
      cpuRatioCold: median(cpu('pg')) / median(cpu('sqlite')),
      cpuRatioWarm: median(cpu('pg-warm')) / median(cpu('sqlite-warm')),
      goal: { ratio: 1.2 },
    };
    const row = (label: string, k: string, ratio?: number, cpuRatio?: number): string[] => [
      `repoll ${opts.entries / 1000}k`,
      label,
      fmt(median(ms(k)), 0),
      fmt(spreadPct(ms(k)), 0),
      fmt(median(cpu(k))),
      k.startsWith('pg') ? fmt(median((runs[k] ?? []).map((x) => x.pgServerCpuS))) : '',
      ratio === undefined ? '' : fmt(ratio),
      cpuRatio === undefined ? '' : fmt(cpuRatio),
    ];
    printTable(
      ['case', 'run', 'median ms', 'spread %', 'CPU s', 'server CPU s', 'pg/sqlite time', 'pg/sqlite CPU'],
      [
        row('run-once cycle, SQLite', 'sqlite'),
        row('run-once cycle, PostgreSQL', 'pg', result.ratioCold, result.cpuRatioCold),
        row('daemon 2nd cycle, SQLite', 'sqlite-warm'),
        row('daemon 2nd cycle, PostgreSQL', 'pg-warm', result.ratioWarm, result.cpuRatioWarm),
      ],
    );
    const met = (x: number) => (x <= result.goal.ratio ? 'met' : 'MISSED');
    console.log(
      `goal: PostgreSQL re-poll within ${result.goal.ratio}x of SQLite's: run-once ${fmt(result.ratioCold)}x (${met(result.ratioCold)}), daemon ${fmt(result.ratioWarm)}x (${met(result.ratioWarm)})`,
    );
    return result;
  } finally {
    await server.close();
    await account.remove();
    await pg.stop();
    await rm(work, { recursive: true, force: true });
  }
}
