/**
 * The ledger's primary fails over under a running daemon: two PostgreSQL 15 servers (a primary
 * and its synchronous streaming standby, `pg_basebackup -R`), `ledger:` naming both hosts; the
 * primary is stopped (`pg_ctl stop -m immediate`) while files keep arriving on the FTP source,
 * then the standby promoted. The daemon moves to the new primary, says so once in the log and
 * on the status page, and every file is fetched once (counted by the FTP server).
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { databaseOn, pgAvailable, replicatedPair } from '../helpers/postgres.js';
import type { ReplicatedPair } from '../helpers/postgres-server.js';
import { countBy } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
let pair: ReplicatedPair | undefined;
let ledger: PostgresLedger | undefined;
let daemon: Daemon | undefined;
afterEach(async () => {
  if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.child.kill('SIGKILL');
  await ledger?.close();
  await env?.close();
  await pair?.stop();
  env = undefined;
  ledger = undefined;
  daemon = undefined;
  pair = undefined;
});

/** Files put on the source, one every this long, before, during and after the failover. */
const ARRIVAL_MS = 250;
const LEASE = '6s';

describe.skipIf(!pgAvailable)('PostgreSQL failover', () => {
  it('a daemon polling every 2 s moves to the promoted standby; no file missed or fetched twice', async () => {
    pair = await replicatedPair();
    const p = pair;
    const db = new URL(await databaseOn(p.primaryPort)).pathname.slice(1);
    const url = `postgres://postgres@127.0.0.1:${p.primaryPort},127.0.0.1:${p.standbyPort}/${db}?target_session_attrs=read-write`;
    env = await startEngineEnv({
      // Each download waits a little: transfers are in flight when the primary dies.
      ftp: { faults: { retrDelayMs: 300 } },
      source: { every: '2s' },
      config: { ledger: url, leaseTime: LEASE, http: { port: 0 }, instance: 'failover-a' },
    });
    const e = env;
    let put = 0;
    const putNext = async () => {
      put++;
      await e.put(`in/f${String(put).padStart(4, '0')}.bufr`, `file ${put}`);
    };
    for (let i = 0; i < 5; i++) await putNext();
    daemon = await startDaemon(env);
    const d = daemon;
    const fetched = () => d.lines().filter((l) => l.event === 'file.fetched').length;
    await waitFor(() => fetched() >= 5, { timeoutMs: 30_000, what: 'the first files fetched' });
    const httpLine = await d.waitForEvent('http.listening');
    const statusUrl = `http://127.0.0.1:${String(httpLine['port'])}/api/status`;

    // Files keep arriving through the failover.
    let arriving = true;
    const arrivals = (async () => {
      while (arriving) {
        await putNext();
        await new Promise((r) => setTimeout(r, ARRIVAL_MS));
      }
    })();
    await new Promise((r) => setTimeout(r, 1_500));
    await p.killPrimary();
    // A failover manager takes a moment to decide; the daemon meanwhile finds no primary.
    await new Promise((r) => setTimeout(r, 2_000));
    await p.promoteStandby();
    const promotedMs = Date.now();
    const switched = await d.waitForEvent('ledger.failed_over', () => true, 30_000);
    expect(switched).toMatchObject({
      from: `127.0.0.1:${p.primaryPort}`,
      to: `127.0.0.1:${p.standbyPort}`,
    });
    const firstAfter = await waitFor(
      () => d.lines().find((l) => l.event === 'file.fetched' && Date.parse(String(l['time'])) > promotedMs),
      { timeoutMs: 30_000, what: 'a file fetched after the promotion' },
    );
    const backMs = Date.parse(String(firstAfter['time'])) - promotedMs;
    console.log(`failover: first file fetched ${backMs} ms after the promotion (lease ${LEASE}, renewals every 2 s)`);
    await new Promise((r) => setTimeout(r, 3_000));
    arriving = false;
    await arrivals;

    // Every file that arrived lands once; the ledger (on the new primary) has each processed.
    ledger = await PostgresLedger.open({ url, displayUrl: url });
    const l = ledger;
    await waitFor(async () => (await l.files({})).filter((f) => f.state === 'processed').length === put, {
      timeoutMs: 60_000,
      what: `${put} files processed`,
    });
    const served = countBy(e.ftp.retrieved(), (f) => path.relative(e.ftp.root, f));
    expect(served.size).toBe(put);
    expect([...served.values()].filter((n) => n !== 1)).toEqual([]);
    expect((await l.stats()).fileRows).toBe(put);
    expect(l.connection().host).toBe(`127.0.0.1:${p.standbyPort}`);

    // Said once in the log, without the user; and on the status page.
    expect(d.lines().filter((x) => x.event === 'ledger.failed_over')).toHaveLength(1);
    expect(d.lines().some((x) => JSON.stringify(x).includes('postgres@'))).toBe(false);
    const status = (await (await fetch(statusUrl)).json()) as {
      ledger?: { host: string; switches: number; lastSwitch: { from: string; to: string } | null };
    };
    expect(status.ledger).toMatchObject({
      host: `127.0.0.1:${p.standbyPort}`,
      switches: 1,
      lastSwitch: { from: `127.0.0.1:${p.primaryPort}`, to: `127.0.0.1:${p.standbyPort}` },
    });
    const page = await (await fetch(statusUrl.replace('/api/status', '/'))).text();
    expect(page).toContain(`failed over`);
    expect(page).toContain(`127.0.0.1:${p.standbyPort}`);

    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  }, 180_000);
});
