/**
 * A landing root per host, kill -9 mid-plugin: instance a lands every file in its own landing and
 * its first plugin succeeds on each; its second (slow) plugin is still running when a is killed.
 * While a lives, b and c (landings of their own) leave its landed work alone; after the lease one
 * of them sweeps a, and its landed-but-unprocessed files are fetched again from the server into b's
 * or c's landing and processed there: the first plugin is not run again, the second runs once.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { readXferlog } from '../helpers/debian-ftp.js';
import { FIXTURE_PLUGINS } from '../helpers/engine-env.js';
import { closeSite, type FleetSite, openSite, putFile, startMember, vsftpdAvailable } from '../helpers/fleet.js';
import { freshDatabase, pgAvailable } from '../helpers/postgres.js';
import { countBy, readRecords } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

const vsftpd = vsftpdAvailable('per-host kill test');
const FILES = 8;
let site: FleetSite | undefined;
afterEach(async () => {
  await closeSite(site);
  site = undefined;
});

describe.skipIf(!pgAvailable || !vsftpd)('a landing root per host, kill -9 (PostgreSQL, vsftpd)', () => {
  it('an instance killed between landing and the end of its plugins: after the lease another fetches and processes its files; each plugin succeeds once', async () => {
    site = await openSite('poller-per-host-kill-');
    const { tmp, server, members } = site;
    const names = Array.from({ length: FILES }, (_, i) => `v${String(i).padStart(2, '0')}.bufr`);
    for (const n of names) await putFile(site, n, `${n}\n`.repeat(500));
    const url = await freshDatabase();
    const fastLog = path.join(tmp.path, 'fast.jsonl');
    const slowLog = path.join(tmp.path, 'slow.jsonl');
    const record = path.join(FIXTURE_PLUGINS, 'record.mjs');
    const fleet = {
      dir: tmp.path,
      ledger: url,
      server,
      // As many transfers as files: a's slow plugin holds each file's slot, and every file must land first.
      source: { include: ['*.bufr'], every: '1s', concurrency: FILES, maxConnections: FILES },
      config: (id: string) => ({
        landingMode: 'per-host',
        leaseTime: '3s',
        plugins: [
          { use: record, name: 'fast', options: { log: fastLog } },
          // On a, the second plugin outlasts the test: a dies in it.
          { use: record, name: 'slow', options: { log: slowLog, delayMs: id === 'edge-a' ? 600_000 : 50 } },
        ],
      }),
    };
    site.ledger = await PostgresLedger.open({ url, displayUrl: url });
    const l = site.ledger;
    const a = await startMember(fleet, 'edge-a');
    members.push(a);
    // a lands every file and its first plugin's success on each is in the ledger.
    await waitFor(
      async () => {
        const rows = await l.files({ limit: 100 });
        if (rows.length !== FILES || !rows.every((r) => r.state === 'processing' && r.landedOn === 'edge-a'))
          return false;
        const runs = await l.pluginRuns(rows.map((r) => r.id));
        return [...runs.values()].every((rs) => rs.find((r) => r.plugin === 'fast')?.state === 'succeeded');
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'a landed all, fast succeeded on each' },
    );
    expect((await readdir(path.join(a.landing, 'radar'))).sort()).toEqual(names);
    const b = await startMember(fleet, 'edge-b');
    const c = await startMember(fleet, 'edge-c');
    members.push(b, c);
    // While a lives, b and c run their cycles and take none of a's landed files.
    await waitFor(() => [b, c].every((m) => m.lines().filter((x) => x.event === 'cycle.finished').length >= 3), {
      timeoutMs: 30_000,
      what: 'b and c each finished three cycles',
    });
    expect(readRecords(slowLog)).toEqual([]);
    expect((await l.files({ limit: 100 })).every((r) => r.landedOn === 'edge-a')).toBe(true);

    a.child.kill('SIGKILL');
    await a.exited;
    await Promise.any(
      [b, c].map((m) =>
        waitFor(() => m.lines().find((x) => x.event === 'landing.refetch_orphaned'), {
          timeoutMs: 30_000,
          what: `${m.id} re-homed a's files`,
        }),
      ),
    );
    await waitFor(async () => (await l.files({ limit: 100 })).every((r) => r.state === 'processed'), {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: 'every file processed',
    });

    // Each plugin succeeded once per file: fast on a (not again), slow on b or c.
    const fast = readRecords(fastLog);
    expect(fast.map((r) => r.path).sort()).toEqual(names);
    for (const r of fast) expect(r.pid).toBe(a.child.pid);
    const slow = readRecords(slowLog);
    expect(slow.map((r) => r.path).sort()).toEqual(names);
    const byPid = new Map([b, c].map((m) => [m.child.pid, m]));
    for (const r of slow) expect(byPid.get(r.pid), r.path).toBeDefined();
    // The slow runs a started count as crashed attempts; the last one succeeded.
    const rows = await l.files({ limit: 100 });
    const runs = await l.pluginRuns(rows.map((r) => r.id));
    for (const rs of runs.values()) {
      expect(rs.map((r) => [r.plugin, r.state])).toEqual([
        ['fast', 'succeeded'],
        ['slow', 'succeeded'],
      ]);
      expect(rs.find((r) => r.plugin === 'fast')?.attempts).toBe(1);
    }
    // Fetched twice from the server (a's copy is on a disk no live instance reads), landed in b or c.
    const sent = countBy(
      (await readXferlog(server.xferlogPath ?? '')).filter((t) => t.complete),
      (t) => path.basename(t.path),
    );
    for (const n of names) expect(sent.get(n), n).toBe(2);
    const holders = new Map<string, string>();
    for (const m of [b, c]) {
      const dir = path.join(m.landing, 'radar');
      for (const n of existsSync(dir) ? await readdir(dir) : []) {
        expect(holders.get(n), `${n} in two landings`).toBeUndefined();
        holders.set(n, m.id);
      }
    }
    expect([...holders.keys()].sort()).toEqual(names);
    for (const r of rows) expect(r.landedOn, r.path).toBe(holders.get(r.path));
    for (const r of slow) expect(byPid.get(r.pid)?.id, r.path).toBe(holders.get(r.path));

    for (const m of [b, c]) m.child.kill('SIGTERM');
    for (const m of [b, c]) expect((await m.exited).code, m.stderr().slice(0, 300)).toBe(0);
  }, 180_000);
});
