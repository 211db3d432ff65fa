/**
 * Three daemons on one PostgreSQL ledger and one FTP server, sharing a landing root: each file is
 * fetched once; kill -9 of the one whose transfer hangs mid-file, and the others take its claim
 * over after the lease (the heartbeat sweep), resume the partial, and finish everything.
 */
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { freshDatabase, pgAvailable } from '../helpers/postgres.js';
import { countBy, readRecords, sha256 } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
let ledger: PostgresLedger | undefined;
const daemons: Daemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0))
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
  await ledger?.close();
  await env?.close();
  env = undefined;
});

describe.skipIf(!pgAvailable)('several pollers on one PostgreSQL ledger', () => {
  it('kill -9 of one of three pollers mid-transfer: the others take its claim over within the lease; each file once', async () => {
    const url = await freshDatabase();
    env = await startEngineEnv({
      // The first download hangs after 2 KB with its data connection open, until its poller dies.
      ftp: { faults: { stallDataAfterBytes: 2048, stallTimes: 1 } },
      source: { every: '1s', dataTimeout: '120s' },
      config: { ledger: url, leaseTime: '2s' },
    });
    const names = ['a.bufr', 'b.bufr', 'c.bufr', 'd.bufr', 'e.bufr', 'f.bufr'];
    for (const [i, n] of names.entries()) await env.put(n, `${n}:`.repeat(1000 + i * 100));
    ledger = await PostgresLedger.open({ url, displayUrl: url });
    const l = ledger;

    const a = await startDaemon(env);
    daemons.push(a);
    // a lands five files; the sixth hangs in a's hands.
    const stuck = await waitFor(
      async () => {
        const files = await l.files({});
        const fetching = files.filter((f) => f.state === 'fetching');
        return files.filter((f) => f.state === 'processed').length === 5 && fetching.length === 1
          ? fetching[0]
          : undefined;
      },
      { timeoutMs: 30_000, what: 'five processed and one hanging' },
    );
    const b = await startDaemon(env);
    daemons.push(b);
    const c = await startDaemon(env);
    daemons.push(c);
    const instances = await l.instances();
    expect(instances).toHaveLength(3);
    expect(instances.find((i) => i.owner === stuck.claimedBy)).toMatchObject({ fetching: 1 });
    a.child.kill('SIGKILL');
    await a.exited;

    // One of the two survivors sweeps (one host at a time, by advisory lock).
    await Promise.any([b, c].map((d) => d.waitForEvent('instance.swept', () => true, 30_000)));
    await waitFor(async () => (await l.files({})).every((f) => f.state === 'processed'), {
      timeoutMs: 30_000,
      what: 'every file processed',
    });
    const survivors = await l.instances();
    expect(survivors.map((i) => i.pid).sort()).toEqual([b.child.pid, c.child.pid].sort());
    // A survivor holds the lister lease now, with the next epoch, and lists what arrives next.
    await env.put('g.bufr', 'g:'.repeat(1500));
    names.push('g.bufr');
    await waitFor(async () => (await l.history('radar', 'g.bufr'))[0]?.state === 'processed', {
      timeoutMs: 30_000,
      what: 'g.bufr processed by the new lister',
    });
    const [lister] = await l.listers();
    expect(lister).toMatchObject({ source: 'radar', epoch: 2 });
    expect(survivors.map((i) => i.owner)).toContain(lister?.owner);
    // Each file downloaded in full once (the hung transfer never completed), landed bytes equal.
    const served = countBy(env.ftp.retrieved(), (p) => path.relative(env!.ftp.root, p));
    for (const n of names) expect(served.get(n) ?? 0, n).toBe(1);
    for (const n of names)
      expect(sha256(readFileSync(path.join(env.landing, 'radar', n)))).toBe(
        sha256(readFileSync(path.join(env.ftp.root, n))),
      );
    // No partial handed to a plugin; one plugin run per file, all on complete files.
    const records = readRecords(env.recordLog);
    expect(records.map((r) => r.path).sort()).toEqual(names);
    for (const r of records) expect(r.sha256).toBe(sha256(readFileSync(path.join(env.ftp.root, r.path))));
    expect(await readdir(path.join(env.landing, '.partial'))).toEqual([]);
    for (const d of [b, c]) d.child.kill('SIGTERM');
    for (const d of [b, c]) expect((await d.exited).code).toBe(0);
  }, 120_000);
});
