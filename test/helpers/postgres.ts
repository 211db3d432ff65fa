/**
 * PostgreSQL for tests: `freshDatabase()` gives each test a database of its own (CREATE DATABASE
 * ... TEMPLATE template0, on the run's one server; see postgres-server.ts), and `pgAvailable`
 * says whether to run at all. Without the binaries the suites skip with a visible notice, except
 * under CI=true, where that is an error.
 */
import pg from 'pg';
import { inject } from 'vitest';
import {
  ensureRunServer,
  type PrivateServer,
  postgresMissing,
  type ReplicatedPair,
  startPrivateServer,
  startReplicatedPair,
} from './postgres-server.js';

const missing = postgresMissing();
if (missing !== undefined) {
  if (process.env['CI'] === 'true') throw new Error(`PostgreSQL is missing in CI: ${missing}`);
  console.warn(`NOTICE: PostgreSQL tests skipped: ${missing}`);
}

/** True when the PostgreSQL binaries are here (suites use `describe.skipIf(!pgAvailable)`). */
export const pgAvailable = missing === undefined;

let counter = 0;

/** The run's server port (starting the server on first use). */
export async function pgPort(): Promise<number> {
  return await ensureRunServer(inject('pgRunDir'));
}

/** A server of the test's own (restart tests), stopped by the test or else at the run's end. */
export async function privateServer(): Promise<PrivateServer> {
  return await startPrivateServer(inject('pgRunDir'));
}

/** A primary and its synchronous streaming standby (failover tests), stopped by the test or at the run's end. */
export async function replicatedPair(): Promise<ReplicatedPair> {
  return await startReplicatedPair(inject('pgRunDir'));
}

/** A new database on a given server. */
export async function databaseOn(port: number): Promise<string> {
  const name = `t_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`);
  } finally {
    await admin.end();
  }
  return `postgres://postgres@127.0.0.1:${port}/${name}`;
}

/** A new empty database on the run's server; resolves to its URL (user postgres, trust auth). */
export async function freshDatabase(): Promise<string> {
  return await databaseOn(await pgPort());
}

/**
 * A role that must log in with a password (members of `password_login` get SCRAM, not trust),
 * owning a new database; resolves to the URL without the password.
 */
export async function passwordDatabase(user: string, password: string): Promise<string> {
  const url = await freshDatabase();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(
      `DO $$ BEGIN CREATE ROLE password_login NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
    );
    await admin.query(`CREATE ROLE ${user} LOGIN PASSWORD '${password.replace(/'/g, "''")}' IN ROLE password_login`);
    await admin.query(`GRANT ALL ON SCHEMA public TO ${user}`);
    await admin.query(`ALTER DATABASE ${new URL(url).pathname.slice(1)} OWNER TO ${user}`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.username = user;
  return u.toString();
}
