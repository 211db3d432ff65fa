/** The database restarts under a running poller: it reconnects, nothing is lost or fetched twice. */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { databaseOn, pgAvailable, privateServer } from '../helpers/postgres.js';
import type { PrivateServer } from '../helpers/postgres-server.js';
import { countBy } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
let server: PrivateServer | undefined;
let ledger: PostgresLedger | undefined;
let daemon: Daemon | undefined;
afterEach(async () => {
  if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
  await ledger?.close();
  await env?.close();
  await server?.stop();
  env = undefined;
  ledger = undefined;
  daemon = undefined;
});

describe.skipIf(!pgAvailable)('PostgreSQL restarts', () => {
  it('a daemon keeps going across a database restart; nothing lost, nothing fetched twice', async () => {
    server = await privateServer();
    const url = await databaseOn(server.port);
    env = await startEngineEnv({ source: { every: '500ms' }, config: { ledger: url, leaseTime: '3s' } });
    ledger = await PostgresLedger.open({ url, displayUrl: url });
    const l = ledger;
    const processed = async (n: number) =>
      waitFor(async () => (await l.files({})).filter((f) => f.state === 'processed').length === n, {
        timeoutMs: 30_000,
        what: `${n} processed`,
      });
    await env.put('one.bufr', 'one');
    daemon = await startDaemon(env);
    await processed(1);
    await server.restart();
    // The daemon saw its connections cut (idle ones dropped, or a heartbeat refused), and goes on.
    await waitFor(
      () =>
        daemon?.lines().some((x) => x.event === 'ledger.connection_lost' || x.event === 'instance.heartbeat_failed'),
      { timeoutMs: 10_000, what: 'the daemon noticing the restart' },
    );
    await env.put('two.bufr', 'two');
    await processed(2);
    await env.put('three.bufr', 'three');
    await processed(3);
    expect(daemon.child.exitCode).toBeNull();
    const served = countBy(env.ftp.retrieved(), (p) => path.relative(env!.ftp.root, p));
    expect(Object.fromEntries(served)).toEqual({ 'one.bufr': 1, 'two.bufr': 1, 'three.bufr': 1 });
    expect((await l.stats()).fileRows).toBe(3);
    daemon.child.kill('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
  }, 120_000);
});
