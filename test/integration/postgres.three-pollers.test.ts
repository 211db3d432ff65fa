/**
 * Three daemons with instance ids of their own on one PostgreSQL ledger and one FTP server whose
 * every download waits before it starts (hosts latency-bound, not CPU-bound): each file is
 * fetched and processed exactly once, and each instance takes a share.
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

describe.skipIf(!pgAvailable)('three pollers on one PostgreSQL ledger', () => {
  it('three instances on a delayed server: every file fetched once (server, ledger, plugin runs), each takes a share', async () => {
    const url = await freshDatabase();
    env = await startEngineEnv({
      // Each download waits 300 ms: one poller alone needs many cycles, the others join in.
      ftp: { faults: { retrDelayMs: 300 } },
      source: { every: '1s', maxFilesPerPoll: 2, concurrency: 1 },
      config: { ledger: url, leaseTime: '3s' },
    });
    const names = Array.from({ length: 36 }, (_, i) => `f${String(i).padStart(2, '0')}.bufr`);
    for (const n of names) await env.put(n, `${n}\n`.repeat(300));
    // One config per instance, the same but for `instance:`.
    const base = JSON.parse(readFileSync(env.configPath, 'utf8')) as Record<string, unknown>;
    const ids = ['ingest-a', 'ingest-b', 'ingest-c'];
    const configs = ids.map((id) => path.join(env!.dir, `${id}.yaml`));
    for (const [i, id] of ids.entries()) await writeFile(configs[i]!, JSON.stringify({ ...base, instance: id }));
    ledger = await PostgresLedger.open({ url, displayUrl: url });
    const l = ledger;
    const started = await Promise.all(configs.map((c) => startDaemon(env!, ['--config', c])));
    daemons.push(...started);
    await waitFor(async () => (await l.files({ limit: 100 })).filter((f) => f.state === 'processed').length === 36, {
      timeoutMs: 90_000,
      what: 'all 36 processed',
    });
    // The server sent each file once.
    const served = countBy(env.ftp.retrieved(), (p) => path.relative(env!.ftp.root, p));
    expect([...served.keys()].sort()).toEqual(names);
    for (const n of names) expect(served.get(n), n).toBe(1);
    // The ledger holds one row per file, processed, and no version twice.
    const rows = await l.files({ limit: 100 });
    expect(rows.map((r) => r.path).sort()).toEqual(names);
    for (const n of names) expect(await l.history('radar', n), n).toHaveLength(1);
    // One plugin run per file.
    const runs = countBy(readRecords(env.recordLog), (r) => r.path);
    expect([...runs.keys()].sort()).toEqual(names);
    for (const n of names) expect(runs.get(n), n).toBe(1);
    // Each instance fetched a share, and the shares add up to the whole.
    const shares = started.map((d) => d.lines().filter((x) => x.event === 'file.fetched').length);
    expect(shares.reduce((a, b) => a + b, 0)).toBe(36);
    for (const [i, s] of shares.entries()) expect(s, `${ids[i]} fetched ${s}`).toBeGreaterThan(0);
    // The three are known by their ids; one of them lists the source.
    expect((await l.instances()).map((i) => i.id).sort()).toEqual(ids);
    const listers = await l.listers();
    expect(listers).toHaveLength(1);
    const holder = (await l.instances()).find((i) => i.owner === listers[0]!.owner);
    expect(ids).toContain(holder?.id);
    for (const d of started) d.child.kill('SIGTERM');
    for (const d of started) expect((await d.exited).code).toBe(0);
    expect(await l.instances()).toEqual([]);
  }, 150_000);
});
