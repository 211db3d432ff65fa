/**
 * PostgreSQL for the benchmarks: a private server on 127.0.0.1 started by the test harness's
 * code (initdb + pg_ctl, fsync off) in a scratch directory, a fresh database per repetition,
 * and the server's CPU seconds (its own plus those of the exited backends it reaped).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { postgresMissing, startPrivateServer, stopRunServer } from '../../test/helpers/postgres-server.js';

export interface BenchPostgres {
  readonly port: number;
  /** A new empty database; resolves to its URL. */
  database(): Promise<string>;
  /** Files in the `processed` state in a database of this server. */
  processed(url: string): Promise<number>;
  /** CPU seconds of the server so far (postmaster and its exited backends). */
  cpuS(): number;
  stop(): Promise<void>;
}

let seq = 0;

/** Starts the server, or says why it cannot (the reason for a skipped case). */
export async function startBenchPostgres(): Promise<BenchPostgres | string> {
  const missing = postgresMissing();
  if (missing) return missing;
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-pg-'));
  const server = await startPrivateServer(runDir);
  const pidFile = () => {
    const dir = readdirSync(runDir).find((d) => d.startsWith('private-'));
    return path.join(runDir, dir ?? '', 'pg', 'data', 'postmaster.pid');
  };
  const ticks = 100; // USER_HZ on Linux
  return {
    port: server.port,
    async database() {
      const name = `bench_${process.pid}_${++seq}`;
      const admin = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres' });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`);
      } finally {
        await admin.end();
      }
      return `postgres://postgres@127.0.0.1:${server.port}/${name}`;
    },
    async processed(url) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const r = await c.query<{ n: string }>("SELECT COUNT(*) AS n FROM files WHERE state = 'processed'");
        return Number(r.rows[0]?.n ?? 0);
      } finally {
        await c.end();
      }
    },
    cpuS() {
      const pid = readFileSync(pidFile(), 'utf8').split('\n')[0]?.trim();
      // Fields after the command name: utime, stime, cutime, cstime are the 14th..17th of the line.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return [11, 12, 13, 14].reduce((n, i) => n + Number(f[i]), 0) / ticks;
    },
    async stop() {
      await stopRunServer(runDir);
      await rm(runDir, { recursive: true, force: true });
    },
  };
}
