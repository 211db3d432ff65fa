/**
 * `poller run-once` on a shared ledger while a daemon holds the source's lister lease: the
 * run-once lists the source itself (a one-shot listing, the ledger dedupes by version), fetches
 * what it found, and leaves the lease with the daemon.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { freshDatabase, pgAvailable } from '../helpers/postgres.js';
import { countBy, readRecords } from '../helpers/records.js';
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

describe.skipIf(!pgAvailable)('run-once on a shared PostgreSQL ledger', () => {
  it('lists the source itself while a daemon holds the lister lease, fetches each new file once, a --since backfill too', async () => {
    const url = await freshDatabase();
    env = await startEngineEnv({
      // The daemon lists at start and not again during the test; its lease lives on by its heartbeat.
      source: { every: '1h' },
      config: { ledger: url, leaseTime: '30s' },
    });
    const base = JSON.parse(readFileSync(env.configPath, 'utf8')) as Record<string, unknown>;
    const configOf = async (id: string) => {
      const file = path.join(env!.dir, `${id}.yaml`);
      await writeFile(file, JSON.stringify({ ...base, instance: id }));
      return file;
    };
    await env.put('a.bufr', 'a:'.repeat(500));
    ledger = await PostgresLedger.open({ url, displayUrl: url });
    const l = ledger;
    const d = await startDaemon(env, ['--config', await configOf('ingest-daemon')]);
    daemons.push(d);
    await waitFor(async () => (await l.history('radar', 'a.bufr'))[0]?.state === 'processed', {
      timeoutMs: 30_000,
      what: 'a.bufr processed by the daemon',
    });
    const daemonOwner = (await l.instances()).find((i) => i.id === 'ingest-daemon')?.owner;
    expect(await l.listers()).toMatchObject([{ source: 'radar', owner: daemonOwner, epoch: 1 }]);

    // Files the daemon has not listed: only a run-once that lists can find them.
    for (const n of ['b.bufr', 'c.bufr']) await env.put(n, `${n}:`.repeat(700));
    const once = await env.cli(['run-once', '--json', '--config', await configOf('ingest-once')]);
    expect(once.code, once.stderr).toBe(0);
    const summary = JSON.parse(once.stdout) as {
      sources: Array<{ listed: number; fetched: number; processed: number }>;
    };
    expect(summary.sources[0]).toMatchObject({ listed: 3, fetched: 2, processed: 2 });
    for (const n of ['a.bufr', 'b.bufr', 'c.bufr']) {
      const h = await l.history('radar', n);
      expect(h, n).toHaveLength(1);
      expect(h[0]?.state, n).toBe('processed');
    }
    // A backfill (--since) lists too: the old file it finds is fetched, nothing else again.
    await env.put('old.bufr', 'old:'.repeat(600), Date.now() - 5 * 3_600_000);
    const backfill = await env.cli(['run-once', '--json', '--since', '6h', '--config', await configOf('ingest-once')]);
    expect(backfill.code, backfill.stderr).toBe(0);
    expect((JSON.parse(backfill.stdout) as typeof summary).sources[0]).toMatchObject({ fetched: 1, processed: 1 });
    // The lease stays with the daemon, at the same epoch.
    expect(await l.listers()).toMatchObject([{ source: 'radar', owner: daemonOwner, epoch: 1 }]);
    // Each file from the server once, one plugin run each.
    const all = { 'a.bufr': 1, 'b.bufr': 1, 'c.bufr': 1, 'old.bufr': 1 };
    const served = countBy(env.ftp.retrieved(), (p) => path.relative(env!.ftp.root, p));
    expect(Object.fromEntries(served)).toEqual(all);
    const runs = countBy(readRecords(env.recordLog), (r) => r.path);
    expect(Object.fromEntries(runs)).toEqual(all);
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);
  }, 120_000);
});
