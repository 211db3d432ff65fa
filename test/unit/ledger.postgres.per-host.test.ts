/**
 * A landing root per host on the PostgreSQL ledger: a landed file is recorded as on the instance
 * that landed it; only that instance processes it or resumes its partial while it lives; once it is
 * gone, its landed-but-unprocessed versions are due for fetching again elsewhere, with their plugin
 * successes kept. The shared root (no `landedOn`) keeps today's behaviour.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PostgresLedger } from '../../src/ledger/postgres/postgres-ledger.js';
import { freshDatabase, pgAvailable } from '../helpers/postgres.js';

const opened: PostgresLedger[] = [];
afterEach(async () => {
  for (const l of opened.splice(0)) await l.close();
});

async function open(url: string, landedOn?: string): Promise<PostgresLedger> {
  const l = await PostgresLedger.open({ url, displayUrl: url, ...(landedOn !== undefined && { landedOn }) });
  opened.push(l);
  return l;
}

const T0 = Date.UTC(2026, 11, 8, 2);
const LEASE = 30_000;
const FAR = T0 + 3_600_000;

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

async function readyIds(l: PostgresLedger, names: string[]): Promise<number[]> {
  const { ready } = await l.observe('s', names.map(entry), {
    nowMs: T0,
    minAgeMs: 0,
    stableListings: 2,
    oldEnoughMs: 600_000,
  });
  return names.map((n) => ready.find((r) => r.path === n)?.id as number);
}

describe.skipIf(!pgAvailable)('postgres ledger, a landing root per host', () => {
  it('processing and fetch resumes stay with the holder while it lives; once swept, its unprocessed files are fetched again elsewhere, successes kept', async () => {
    const url = await freshDatabase();
    const a = await open(url, 'host-a');
    const b = await open(url, 'host-b');
    const [f1, f2, f3, f4] = (await readyIds(a, ['f1', 'f2', 'f3', 'f4'])) as [number, number, number, number];
    await a.heartbeat({ id: 'host-a', owner: 'A', host: 'a', pid: 1 }, T0);
    await b.heartbeat({ id: 'host-b', owner: 'B', host: 'b', pid: 2 }, T0);

    // a lands f1 (processing, its first plugin done), f2 (a plugin failed, retry due) and f3
    // (fetched, not started); f4's fetch failed halfway (its partial is on a).
    await a.claimForFetch([f1, f2, f3, f4], 'A', FAR, T0);
    expect((await a.get(f4))?.landedOn).toBe('host-a');
    await a.markFetched(
      [f1, f2, f3].map((id) => ({ id, localPath: `/a/${id}` })),
      'A',
      T0,
    );
    await a.markFetchFailed(
      [{ id: f4, failure: { errorCode: 'POLLER_FTP_RESET', message: 'reset', nextRetryMs: T0, quarantine: false } }],
      'A',
      T0,
    );
    expect((await a.files({})).filter((f) => f.id !== f4).map((f) => f.landedOn)).toEqual([
      'host-a',
      'host-a',
      'host-a',
    ]);
    await a.claimIdsForProcessing([f1, f2], 'A', FAR, T0);
    await a.markPluginRunning(
      [
        { fileId: f1, plugin: 'fast' },
        { fileId: f1, plugin: 'slow' },
        { fileId: f2, plugin: 'fast' },
      ],
      T0,
    );
    await a.markPluginSucceeded([{ fileId: f1, plugin: 'fast', durationMs: 5, outputs: [] }], 'A', T0);
    // A success is written only where the owner holds the file.
    await b.markPluginSucceeded([{ fileId: f2, plugin: 'fast', durationMs: 5, outputs: [] }], 'B', T0);
    expect((await a.pluginRuns([f2])).get(f2)?.[0]?.state).toBe('running');
    await a.finishProcessing(
      [
        {
          id: f2,
          outcomes: [
            {
              plugin: 'fast',
              ok: false,
              message: 'no',
              durationMs: 1,
              outputs: [],
              quarantine: false,
              nextRetryMs: T0,
            },
          ],
        },
      ],
      'A',
      T0,
    );
    expect((await a.get(f2))?.state).toBe('failed');

    // While a lives, b claims none of it: not f3 (fetched), not f2 (retry due), not f4 (partial on a).
    expect(await b.claimForProcessing('s', 'B', FAR, T0 + 1000, 10)).toEqual([]);
    expect(await b.claimIdsForProcessing([f2, f3], 'B', FAR, T0 + 1000)).toEqual([]);
    expect(await b.claimDueForFetch('s', 'B', FAR, T0 + 1000, 10)).toEqual([]);
    expect(await b.claimForFetch([f4], 'B', FAR, T0 + 1000)).toEqual([]);
    // a does: its retry, and its own partial's resume.
    expect((await a.claimDueForFetch('s', 'A', FAR, T0 + 1000, 10)).map((r) => r.id)).toEqual([f4]);
    await a.markFetchFailed(
      [
        {
          id: f4,
          failure: { errorCode: 'POLLER_FTP_RESET', message: 'reset', nextRetryMs: T0 + 2000, quarantine: false },
        },
      ],
      'A',
      T0 + 1000,
    );
    expect((await a.get(f4))?.landedOn).toBe('host-a');

    // a stops beating; past the lease b sweeps it.
    await b.heartbeat({ id: 'host-b', owner: 'B', host: 'b', pid: 2 }, T0 + 20_000);
    const swept = await b.sweepDead(T0 + 40_000, LEASE);
    expect(swept).toMatchObject({ dead: ['host-a'], processing: 1, refetch: 3 });
    for (const id of [f1, f2, f3])
      expect(await b.get(id)).toMatchObject({ state: 'seen', localPath: null, claimedBy: null });
    // Its runs are kept: f1's fast succeeded (not run again), slow crashed (runs again).
    const runs = (await b.pluginRuns([f1])).get(f1) ?? [];
    expect(runs.map((r) => [r.plugin, r.state, r.errorCode])).toEqual([
      ['fast', 'succeeded', null],
      ['slow', 'failed', 'POLLER_PLUGIN_CRASHED'],
    ]);
    // b fetches all four again (f4 from scratch: a's partial is on a disk no one reads) and holds them.
    const again = await b.claimDueForFetch('s', 'B', FAR, T0 + 41_000, 10);
    expect(again.map((r) => r.id).sort()).toEqual([f1, f2, f3, f4].sort());
    expect(
      await b.markFetched(
        again.map((r) => ({ id: r.id, localPath: `/b/${r.id}` })),
        'B',
        T0 + 41_000,
      ),
    ).toEqual([]);
    expect((await b.files({})).map((f) => [f.state, f.landedOn])).toEqual(Array(4).fill(['fetched', 'host-b']));
    expect((await b.claimForProcessing('s', 'B', FAR, T0 + 41_000, 10)).map((r) => r.id).sort()).toEqual(
      [f1, f2, f3, f4].sort(),
    );
    // A later sweep moves nothing of a live instance.
    expect((await b.sweepDead(T0 + 42_000, LEASE)).refetch).toBeUndefined();
  });

  it('the shared root: no holder recorded, any instance processes what another landed', async () => {
    const url = await freshDatabase();
    const a = await open(url);
    const b = await open(url);
    const [f1] = (await readyIds(a, ['f1'])) as [number];
    await a.heartbeat({ id: 'a', owner: 'A', host: 'a', pid: 1 }, T0);
    await a.claimForFetch([f1], 'A', FAR, T0);
    await a.markFetched([{ id: f1, localPath: '/shared/f1' }], 'A', T0);
    expect((await a.get(f1))?.landedOn).toBeUndefined();
    expect((await b.claimForProcessing('s', 'B', FAR, T0, 10)).map((r) => r.id)).toEqual([f1]);
    await a.leave('a');
    expect((await b.sweepDead(T0 + 1000, LEASE)).refetch).toBeUndefined();
    expect((await b.get(f1))?.state).toBe('processing');
  });
});
