/** Two daemons on one PostgreSQL ledger and one FTP server: one lists, both fetch, each file once. */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';
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

describe.skipIf(!pgAvailable)('two pollers on one PostgreSQL ledger', () => {
  it('one instance lists the source, both claim from the ledger, every file is fetched and processed once', async () => {
    const url = await freshDatabase();
    env = await startEngineEnv({
      // Two files per batch: the lister cannot take everything in one claim, the other gets its share.
      source: { every: '1s', maxFilesPerPoll: 2, concurrency: 1 },
      // A plugin that takes a while: one poller alone cannot drain the listing before the other's first cycle.
      plugins: (_dir, recordLog) => [
        { use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log: recordLog, delayMs: 300 } },
      ],
      config: { ledger: url, leaseTime: '3s' },
    });
    const names = Array.from({ length: 24 }, (_, i) => `f${String(i).padStart(2, '0')}.bufr`);
    for (const n of names) await env.put(n, `${n}\n`.repeat(200));
    ledger = await PostgresLedger.open({ url, displayUrl: url });
    const l = ledger;
    const [a, b] = await Promise.all([startDaemon(env), startDaemon(env)]);
    daemons.push(a, b);
    await waitFor(async () => (await l.files({ limit: 100 })).filter((f) => f.state === 'processed').length === 24, {
      timeoutMs: 60_000,
      what: 'all 24 processed',
    });
    const served = countBy(env.ftp.retrieved(), (p) => path.relative(env!.ftp.root, p));
    expect([...served.keys()].sort()).toEqual(names);
    for (const n of names) expect(served.get(n), n).toBe(1);
    // Both fetched a share (the lister and the other), and no file was landed by both.
    const byA = a.lines().filter((x) => x.event === 'file.fetched').length;
    const byB = b.lines().filter((x) => x.event === 'file.fetched').length;
    expect(byA + byB).toBe(24);
    expect(Math.min(byA, byB)).toBeGreaterThan(0);
    const runs = countBy(readRecords(env.recordLog), (r) => r.path);
    for (const n of names) expect(runs.get(n), n).toBe(1);
    // One lister, two instances; status says which lists the source.
    const status = await env.cli(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const report = JSON.parse(status.stdout);
    expect(report.instances.map((i: { pid: number }) => i.pid).sort()).toEqual([a.child.pid, b.child.pid].sort());
    const listerId = report.sources[0].lister.instance as string;
    expect([`${report.instances[0].id}`, `${report.instances[1].id}`]).toContain(listerId);
    const text = await env.cli(['status']);
    expect(text.stdout).toMatch(
      new RegExp(`listed by: ${listerId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(lease epoch 1\\)`),
    );
    expect(text.stdout).toMatch(/instance \S+ {2}pid \d+ on \S+, heartbeat/);
    for (const d of [a, b]) d.child.kill('SIGTERM');
    for (const d of [a, b]) expect((await d.exited).code).toBe(0);
    // A clean stop leaves no instance behind.
    expect(await l.instances()).toEqual([]);
  }, 120_000);
});
