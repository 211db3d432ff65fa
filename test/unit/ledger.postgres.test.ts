/** What only the PostgreSQL ledger has: migrations shared by hosts, connection errors, read-only opening. */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { PollerError } from '../../src/errors.js';
import { PG_MIGRATIONS } from '../../src/ledger/postgres/migrations.js';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { freePort } from '../helpers/free-port.js';
import { freshDatabase, pgAvailable } from '../helpers/postgres.js';

const opened: PostgresLedger[] = [];
afterEach(async () => {
  for (const l of opened.splice(0)) await l.close();
});

async function open(url: string, readonly = false): Promise<PostgresLedger> {
  const l = await PostgresLedger.open({ url, displayUrl: url, readonly });
  opened.push(l);
  return l;
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

describe.skipIf(!pgAvailable)('postgres ledger', () => {
  it('eight hosts starting at once on a new database migrate it once', async () => {
    const url = await freshDatabase();
    await Promise.all(Array.from({ length: 8 }, () => open(url)));
    const rows = await query<{ version: number }>(url, 'SELECT version FROM poller_schema ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
    expect((await opened[0]?.stats())?.fileRows).toBe(0);
  });

  it('a read-only command refuses an unmigrated database; a newer schema is refused by all', async () => {
    const url = await freshDatabase();
    await expect(open(url, true)).rejects.toMatchObject({ code: 'POLLER_LEDGER_SCHEMA_MISMATCH' });
    const l = await open(url);
    await l.close();
    expect(await open(url, true)).toBeInstanceOf(PostgresLedger);
    await query(url, `INSERT INTO poller_schema (version, applied_ms) VALUES (${PG_MIGRATIONS.length + 1}, 0)`);
    await expect(open(url)).rejects.toMatchObject({ code: 'POLLER_LEDGER_SCHEMA_TOO_NEW' });
  });

  it('an unreachable server is one error naming the ledger, without the password', async () => {
    const port = await freePort();
    const url = `postgres://poller@127.0.0.1:${port}/poller`;
    const err = (await PostgresLedger.open({ url, displayUrl: url, password: 'hunter2-secret' }).catch(
      (e: unknown) => e,
    )) as PollerError;
    expect(err.code).toBe('POLLER_LEDGER_UNREACHABLE');
    expect(err.message).toContain(`ledger postgres://poller@127.0.0.1:${port}/poller:`);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message.split('\n')).toHaveLength(1);
    expect(JSON.stringify({ m: err.message, s: err.stack })).not.toContain('hunter2');
  });

  it('the sweep gives back the claims of an instance whose heartbeat is older than the lease, once', async () => {
    const url = await freshDatabase();
    const [a, b, c] = await Promise.all([open(url), open(url), open(url)]);
    const T0 = Date.UTC(2026, 11, 2, 12);
    const LEASE = 30_000;
    const entry = (p: string) => ({
      entry: {
        path: p,
        name: p,
        type: 'file' as const,
        sizeBytes: 1,
        mtimeMs: T0 - 3_600_000,
        mtimePrecision: 's' as const,
      },
    });
    const { ready } = await a.observe('s', ['f1', 'f2', 'f3'].map(entry), {
      nowMs: T0,
      minAgeMs: 0,
      stableListings: 2,
      oldEnoughMs: 600_000,
    });
    const [f1, f2, f3] = ready.map((r) => r.id) as [number, number, number];
    await a.heartbeat({ id: 'host-a', owner: 'a:1:x', host: 'a', pid: 1 }, T0);
    await b.heartbeat({ id: 'host-b', owner: 'b:2:y', host: 'b', pid: 2 }, T0);
    // a fetches f1 and f2 and lands f2, then starts processing it; b holds f3.
    await a.claimForFetch([f1, f2], 'a:1:x', T0 + 600_000, T0);
    await a.markFetched([{ id: f2, localPath: '/l/f2' }], 'a:1:x', T0);
    await a.claimIdsForProcessing([f2], 'a:1:x', T0 + 600_000, T0);
    await a.markPluginRunning([{ fileId: f2, plugin: 'p' }], T0);
    await b.claimForFetch([f3], 'b:2:y', T0 + 600_000, T0);
    expect((await c.instances()).map((i) => [i.id, i.fetching, i.processing])).toEqual([
      ['host-a', 1, 1],
      ['host-b', 1, 0],
    ]);
    // Within the lease nothing moves; past it, only a (which stopped beating) is swept.
    expect(await c.sweepDead(T0 + LEASE - 1, LEASE)).toEqual({ swept: true, dead: [], fetches: 0, processing: 0 });
    await b.heartbeat({ id: 'host-b', owner: 'b:2:y', host: 'b', pid: 2 }, T0 + 20_000);
    const sweeps = await Promise.all([b.sweepDead(T0 + 40_000, LEASE), c.sweepDead(T0 + 40_000, LEASE)]);
    expect(sweeps.reduce((n, s) => n + s.fetches + s.processing, 0)).toBe(2);
    expect(sweeps.flatMap((s) => s.dead)).toEqual(['host-a']);
    expect((await c.get(f1))?.state).toBe('seen');
    expect((await c.get(f2))?.state).toBe('fetched');
    expect(await c.get(f3)).toMatchObject({ state: 'fetching', claimedBy: 'b:2:y' });
    expect((await c.pluginRuns([f2])).get(f2)?.[0]).toMatchObject({
      state: 'failed',
      errorCode: 'POLLER_PLUGIN_CRASHED',
      attempts: 1,
    });
    // The dead instance's late writes are refused: its claims are gone.
    expect(await a.markFetched([{ id: f1, localPath: '/l/f1' }], 'a:1:x', T0 + 41_000)).toEqual([f1]);
    // b takes them over.
    expect((await b.claimForFetch([f1], 'b:2:y', T0 + 600_000, T0 + 41_000)).map((r) => r.id)).toEqual([f1]);
    expect((await b.claimForProcessing('s', 'b:2:y', T0 + 600_000, T0 + 41_000, 10)).map((r) => r.id)).toEqual([f2]);
    expect((await c.instances()).map((i) => i.id)).toEqual(['host-b']);
    await b.leave('host-b');
    expect(await c.instances()).toEqual([]);
  });

  it('an instance id back under a new owner gives back the claims of its earlier process', async () => {
    const url = await freshDatabase();
    const l = await open(url);
    const T0 = Date.UTC(2026, 11, 2, 12);
    const { ready } = await l.observe(
      's',
      [{ entry: { path: 'x', name: 'x', type: 'file', sizeBytes: 1, mtimeMs: T0 - 3_600_000, mtimePrecision: 's' } }],
      { nowMs: T0, minAgeMs: 0, stableListings: 2, oldEnoughMs: 600_000 },
    );
    await l.heartbeat({ id: 'ingest-1', owner: 'h:1:old', host: 'h', pid: 1 }, T0);
    await l.claimForFetch([ready[0]!.id], 'h:1:old', T0 + 600_000, T0);
    await l.heartbeat({ id: 'ingest-1', owner: 'h:7:new', host: 'h', pid: 7 }, T0 + 1000);
    expect(await l.get(ready[0]!.id)).toMatchObject({ state: 'seen', claimedBy: null });
    expect((await l.instances())[0]).toMatchObject({ owner: 'h:7:new', pid: 7, startedMs: T0 + 1000 });
  });

  it('one lister per source: the lease passes on expiry with a new epoch; a stale listing records nothing', async () => {
    const url = await freshDatabase();
    const [a, b] = await Promise.all([open(url), open(url)]);
    const T0 = Date.UTC(2026, 11, 2, 12);
    const LEASE = 30_000;
    const old = T0 - 3_600_000;
    const e = (p: string, mtimeMs = old) => ({
      entry: { path: p, name: p, type: 'file' as const, sizeBytes: 1, mtimeMs, mtimePrecision: 's' as const },
    });
    const o = (nowMs: number, lister?: { owner: string; epoch: number }) => ({
      nowMs,
      minAgeMs: 0,
      stableListings: 2,
      oldEnoughMs: 600_000,
      ...(lister && { lister }),
    });
    expect(await a.acquireLister('s', 'A', T0, LEASE)).toBe(1);
    expect(await b.acquireLister('s', 'B', T0 + 1000, LEASE)).toBeNull();
    expect(await a.acquireLister('s', 'A', T0 + 20_000, LEASE)).toBe(1);
    // A heartbeat with the lease renews the leases its instance holds; without, it does not.
    await b.heartbeat({ id: 'b', owner: 'B', host: 'h', pid: 2 }, T0 + 20_000);
    await a.heartbeat({ id: 'a', owner: 'A', host: 'h', pid: 1 }, T0 + 20_000, LEASE);
    expect((await a.listers()).find((x) => x.source === 's')?.leaseUntilMs).toBe(T0 + 20_000 + LEASE);
    expect(await b.acquireLister('t', 'B', T0, LEASE)).toBe(1);
    // a lists: the old file is ready, the young one settles; b, not listing, claims only the ready one.
    await a.observe('s', [e('old'), e('young', T0 - 1000)], o(T0 + 20_000, { owner: 'A', epoch: 1 }));
    const due = await b.claimDueForFetch('s', 'B', T0 + 600_000, T0 + 21_000, 10);
    expect(due.map((r) => r.path)).toEqual(['old']);
    expect(await a.claimDueForFetch('s', 'A', T0 + 600_000, T0 + 21_000, 10)).toEqual([]);
    // a stops renewing (paused past its lease): b takes the lease with the next epoch.
    expect(await b.acquireLister('s', 'B', T0 + 20_000 + LEASE + 1, LEASE)).toBe(2);
    expect(await b.listers()).toEqual([
      { source: 's', owner: 'B', epoch: 2, leaseUntilMs: T0 + 20_000 + 2 * LEASE + 1 },
      { source: 't', owner: 'B', epoch: 1, leaseUntilMs: T0 + LEASE },
    ]);
    // a resumes and records the listing it took under epoch 1: refused, nothing written.
    await expect(a.observe('s', [e('late')], o(T0 + 60_000, { owner: 'A', epoch: 1 }))).rejects.toMatchObject({
      code: 'POLLER_LEDGER_LISTER_LOST',
    });
    expect(await a.history('s', 'late')).toEqual([]);
    // b's listing under epoch 2 records; the young file, seen twice now, is due for anyone.
    const r = await b.observe('s', [e('young', T0 - 1000), e('late')], o(T0 + 61_000, { owner: 'B', epoch: 2 }));
    expect(r.ready.map((x) => x.path).sort()).toEqual(['late', 'young']);
    expect((await a.claimDueForFetch('s', 'A', T0 + 600_000, T0 + 62_000, 10)).map((x) => x.path).sort()).toEqual([
      'late',
      'young',
    ]);
    // Absences are fenced the same way: the stale lister's complete listing counts nothing.
    await b.observe('s', [e('idle')], o(T0 + 62_500, { owner: 'B', epoch: 2 }));
    const coverage = { present: new Set<string>(), covers: () => true };
    await expect(
      a.recordAbsences('s', coverage, { nowMs: T0 + 63_000, goneAfter: 1, lister: { owner: 'A', epoch: 1 } }),
    ).rejects.toMatchObject({ code: 'POLLER_LEDGER_LISTER_LOST' });
    expect((await a.history('s', 'idle')).map((f) => f.state)).toEqual(['seen']);
    const fenced = await b.recordAbsences('s', coverage, {
      nowMs: T0 + 64_000,
      goneAfter: 1,
      lister: { owner: 'B', epoch: 2 },
    });
    expect(fenced.gone.map((g) => g.path)).toEqual(['idle']);
  });
});
