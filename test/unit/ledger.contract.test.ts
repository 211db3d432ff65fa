import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { Observation, ObserveOptions } from '../../src/ledger/ledger.js';
import { hasRemovedUpstream, type ListingCoverage } from '../../src/ledger/removed-upstream.js';
import { MIGRATIONS } from '../../src/ledger/sqlite/migrations.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import type { RemoteEntry } from '../../src/sources/source.js';
import { closeLedgersAfterEach, LEDGER_BACKENDS } from '../helpers/ledger-backends.js';

const T0 = Date.UTC(2026, 10, 23, 12);

function entry(p: string, sizeBytes: number, mtimeMs: number): Observation {
  const e: RemoteEntry = {
    path: p,
    name: path.posix.basename(p),
    type: 'file',
    sizeBytes,
    mtimeMs,
    mtimePrecision: 's',
  };
  return { entry: e };
}

function opts(nowMs: number, over: Partial<ObserveOptions> = {}): ObserveOptions {
  return { nowMs, minAgeMs: 0, stableListings: 2, oldEnoughMs: 10 * 60_000, ...over };
}

describe.each(LEDGER_BACKENDS)('ledger contract: $name', (backend) => {
  closeLedgersAfterEach();
  const open = async () => (await backend.open()).ledger;

  it('a fresh file needs two unchanged listings; an old one is ready at first sight', async () => {
    const l = await open();
    const r1 = await l.observe(
      's',
      [entry('new.bufr', 10, T0 - 1000), entry('old.bufr', 10, T0 - 3_600_000)],
      opts(T0),
    );
    expect(r1.ready.map((r) => r.path)).toEqual(['old.bufr']);
    expect(r1.counts).toMatchObject({ listed: 2, new: 2, settling: 1 });
    const r2 = await l.observe('s', [entry('new.bufr', 10, T0 - 1000)], opts(T0 + 2000));
    expect(r2.ready.map((r) => r.path)).toEqual(['new.bufr']);
    await l.close();
  });

  it('a growing file starts counting again; minAge holds young files back', async () => {
    const l = await open();
    await l.observe('s', [entry('grow.bufr', 10, T0)], opts(T0));
    const r = await l.observe('s', [entry('grow.bufr', 20, T0 + 500)], opts(T0 + 1000));
    expect(r.ready).toHaveLength(0);
    expect(r.counts.changed).toBe(1);
    const young = await l.observe('s', [entry('grow.bufr', 20, T0 + 500)], opts(T0 + 2000, { minAgeMs: 60_000 }));
    expect(young.ready).toHaveLength(0);
    const ok = await l.observe('s', [entry('grow.bufr', 20, T0 + 500)], opts(T0 + 61_000, { minAgeMs: 60_000 }));
    expect(ok.ready.map((x) => x.sizeBytes)).toEqual([20]);
    await l.close();
  });

  it('claims are exclusive across two connections to one file; a changed file is a new version', async () => {
    const opened = await backend.open();
    const a = opened.ledger;
    const b = await opened.reopen();
    const old = entry('x.bufr', 10, T0 - 3_600_000);
    const { ready } = await a.observe('s', [old], opts(T0));
    const ids = ready.map((r) => r.id);
    const [ca, cb] = await Promise.all([
      a.claimForFetch(ids, 'A', T0 + 60_000, T0),
      b.claimForFetch(ids, 'B', T0 + 60_000, T0),
    ]);
    expect(ca.length + cb.length).toBe(1);
    const winner = ca.length ? a : b;
    const owner = ca.length ? 'A' : 'B';
    await winner.markFetched([{ id: ids[0]!, localPath: '/landing/s/x.bufr' }], owner, T0);
    const again = await b.observe('s', [old], opts(T0 + 1000));
    expect(again.ready).toHaveLength(0);
    expect(again.counts.unchanged).toBe(1);
    const changed = await b.observe('s', [entry('x.bufr', 11, T0 - 1_800_000)], opts(T0 + 2000));
    expect(changed.counts.changed).toBe(1);
    expect(changed.ready).toHaveLength(1);
    expect((await a.history('s', 'x.bufr')).map((r) => r.state)).toEqual(['seen', 'fetched']);
    await a.close();
    await b.close();
  });

  it('plugin outcomes decide the file state; retries then quarantine', async () => {
    const l = await open();
    const { ready } = await l.observe('s', [entry('p.bufr', 10, T0 - 3_600_000)], opts(T0));
    const id = ready[0]!.id;
    await l.claimForFetch([id], 'A', T0 + 1, T0);
    await l.markFetched([{ id, localPath: '/l/p.bufr' }], 'A', T0);
    const [rec] = await l.claimIdsForProcessing([id], 'A', T0 + 60_000, T0);
    expect(rec?.state).toBe('processing');
    expect(
      await l.markPluginRunning(
        [
          { fileId: id, plugin: 'good' },
          { fileId: id, plugin: 'bad' },
        ],
        T0,
      ),
    ).toEqual([1, 1]);
    const [state] = await l.finishProcessing(
      [
        {
          id,
          outcomes: [
            { plugin: 'good', ok: true, durationMs: 1, outputs: [{ path: '/out/p.json' }] },
            {
              plugin: 'bad',
              ok: false,
              errorCode: 'X_BROKE',
              message: 'boom',
              durationMs: 1,
              outputs: [],
              nextRetryMs: T0 + 1000,
            },
          ],
        },
      ],
      'A',
      T0,
    );
    expect(state).toBe('failed');
    expect(await l.claimForProcessing('s', 'A', T0 + 60_000, T0 + 500, 10)).toHaveLength(0);
    const due = await l.claimForProcessing('s', 'A', T0 + 60_000, T0 + 1000, 10);
    expect(due.map((d) => d.id)).toEqual([id]);
    expect(await l.markPluginRunning([{ fileId: id, plugin: 'bad' }], T0 + 1000)).toEqual([2]);
    const [final] = await l.finishProcessing(
      [{ id, outcomes: [{ plugin: 'bad', ok: false, message: 'boom', durationMs: 1, outputs: [], quarantine: true }] }],
      'A',
      T0 + 1000,
    );
    expect(final).toBe('quarantined');
    const runs = (await l.pluginRuns([id])).get(id) ?? [];
    expect(runs.map((r) => [r.plugin, r.state])).toEqual([
      ['bad', 'quarantined'],
      ['good', 'succeeded'],
    ]);
    expect(await l.scheduleRetry({ plugin: 'bad', includeQuarantined: true }, T0 + 2000)).toEqual([id]);
    const again = await l.claimForProcessing('s', 'A', T0 + 60_000, T0 + 2000, 10);
    expect(again).toHaveLength(1);
    await l.close();
  });

  it('a success recorded before the next plugin survives a crash in it; only for the claim holder', async () => {
    const l = await open();
    const { ready } = await l.observe('s', [entry('m.bufr', 10, T0 - 3_600_000)], opts(T0));
    const id = ready[0]!.id;
    await l.claimForFetch([id], 'A', T0 + 1, T0);
    await l.markFetched([{ id, localPath: '/l/m.bufr' }], 'A', T0);
    await l.claimIdsForProcessing([id], 'A', T0 + 60_000, T0);
    await l.markPluginRunning([{ fileId: id, plugin: 'first' }], T0);
    // Not the holder: nothing written.
    await l.markPluginSucceeded([{ fileId: id, plugin: 'first', durationMs: 3, outputs: [] }], 'B', T0);
    expect((await l.pluginRuns([id])).get(id)?.[0]?.state).toBe('running');
    await l.markPluginSucceeded([{ fileId: id, plugin: 'first', durationMs: 3, outputs: [{ path: '/o/m' }] }], 'A', T0);
    await l.markPluginRunning([{ fileId: id, plugin: 'second' }], T0);
    // The poller dies in `second`: after recovery only that one is owed.
    await l.recoverStale(T0 + 1, (o) => o === 'A');
    const runs = (await l.pluginRuns([id])).get(id) ?? [];
    expect(runs.map((r) => [r.plugin, r.state, r.attempts])).toEqual([
      ['first', 'succeeded', 1],
      ['second', 'failed', 1],
    ]);
    expect(runs[0]?.outputs).toEqual([{ path: '/o/m' }]);
    expect((await l.get(id))?.state).toBe('fetched');
    await l.close();
  });

  it('recovers claims of a gone owner, keeps a live one', async () => {
    const l = await open();
    const { ready } = await l.observe('s', [entry('a', 1, T0 - 3_600_000), entry('b', 1, T0 - 3_600_000)], opts(T0));
    await l.claimForFetch([ready[0]!.id], 'dead', T0 + 600_000, T0);
    await l.claimForFetch([ready[1]!.id], 'alive', T0 + 600_000, T0);
    const rec = await l.recoverStale(T0 + 1, (o) => o === 'dead');
    expect(rec.fetches).toBe(1);
    expect((await l.get(ready[0]!.id))?.state).toBe('seen');
    expect((await l.get(ready[1]!.id))?.state).toBe('fetching');
    expect((await l.recoverStale(T0 + 600_001, () => false)).fetches).toBe(1);
    await l.close();
  });

  it('records hostile names as rejected, once', async () => {
    const l = await open();
    const bad = { ...entry('../x', 1, T0), rejectReason: 'path component ".."' };
    const r = await l.observe('s', [bad], opts(T0));
    expect(r.counts.rejected).toBe(1);
    expect(r.ready).toHaveLength(0);
    await l.observe('s', [bad], opts(T0 + 1));
    const files = await l.files({ state: 'rejected' });
    expect(files).toHaveLength(1);
    expect(files[0]?.lastError).toContain('..');
    await l.close();
  });

  it('dry-run observe records nothing', async () => {
    const l = await open();
    const r = await l.observe('s', [entry('a', 1, T0 - 3_600_000)], opts(T0, { dryRun: true }));
    expect(r.ready).toHaveLength(1);
    expect(await l.files({})).toHaveLength(0);
    await l.close();
  });

  it('skips a directory whose listing is identical to its last all-quiet one, and notices any change', async () => {
    const opened = await backend.open();
    const l = opened.ledger;
    const old = T0 - 3_600_000;
    const listing = [entry('d/a', 1, old), entry('d/b', 2, old), entry('e/c', 3, old)];
    const { ready } = await l.observe('s', listing, opts(T0));
    const ids = ready.map((r) => r.id);
    await l.claimForFetch(ids, 'A', T0 + 60_000, T0);
    await l.markFetched(
      ids.map((id) => ({ id, localPath: '/x' })),
      'A',
      T0,
    );
    const claimedForProcessing = await l.claimIdsForProcessing(ids, 'A', T0 + 60_000, T0);
    await l.finishProcessing(
      claimedForProcessing.map((r) => ({ id: r.id, outcomes: [] })),
      'A',
      T0,
    );
    // Second listing stores the digests, third is answered by them; a fresh connection has no cache.
    expect((await l.observe('s', listing, opts(T0 + 1))).counts).toMatchObject({ unchanged: 3, new: 0 });
    const fresh = await opened.reopen();
    expect((await fresh.observe('s', [...listing].reverse(), opts(T0 + 2))).counts).toMatchObject({ unchanged: 3 });
    const changed = await fresh.observe(
      's',
      [entry('d/a', 1, old), entry('d/b', 20, old), entry('e/c', 3, old)],
      opts(T0 + 3),
    );
    expect(changed.counts).toMatchObject({ unchanged: 2, changed: 1 });
    expect(changed.ready.map((r) => r.path)).toEqual(['d/b']);
    // A fetch failure in a directory keeps it diffed entry by entry, so its retry comes due.
    const [b] = changed.ready;
    await fresh.claimForFetch([b!.id], 'A', T0 + 60_000, T0 + 3);
    await fresh.markFetchFailed(
      [{ id: b!.id, failure: { errorCode: 'X', message: 'x', nextRetryMs: T0 + 10, quarantine: false } }],
      'A',
      T0 + 3,
    );
    const listing2 = [entry('d/a', 1, old), entry('d/b', 20, old), entry('e/c', 3, old)];
    expect((await fresh.observe('s', listing2, opts(T0 + 5))).ready).toHaveLength(0);
    expect((await fresh.observe('s', listing2, opts(T0 + 11))).ready.map((r) => r.path)).toEqual(['d/b']);
    // forget drops the digests: the forgotten file is new again.
    await fresh.releaseFetch([b!.id], 'A', T0 + 11);
    expect(await fresh.forget({ source: 's', path: 'd/a' })).toBe(1);
    expect((await l.observe('s', listing2, opts(T0 + 12))).counts.new).toBe(1);
    await l.close();
    await fresh.close();
  });

  it('batch writes skip rows whose claim was lost, and keep the rest', async () => {
    const l = await open();
    const old = T0 - 3_600_000;
    const { ready } = await l.observe('s', [entry('a', 1, old), entry('b', 1, old), entry('c', 1, old)], opts(T0));
    const [a, b, c] = ready.map((r) => r.id) as [number, number, number];
    await l.claimForFetch([a, b], 'A', T0 + 60_000, T0);
    await l.claimForFetch([c], 'B', T0 + 60_000, T0);
    const lost = await l.markFetched(
      [a, b, c].map((id) => ({ id, localPath: `/l/${id}` })),
      'A',
      T0,
    );
    expect(lost).toEqual([c]);
    expect((await l.get(a))?.state).toBe('fetched');
    expect((await l.get(c))?.state).toBe('fetching');
    await l.claimIdsForProcessing([a], 'A', T0 + 60_000, T0);
    await l.markPluginRunning([{ fileId: a, plugin: 'p' }], T0);
    const ok = { plugin: 'p', ok: true, durationMs: 1, outputs: [] };
    // b was never claimed for processing by A: its outcome is refused, a's is written.
    const states = await l.finishProcessing(
      [
        { id: a, outcomes: [ok] },
        { id: b, outcomes: [ok] },
      ],
      'A',
      T0,
    );
    expect(states).toEqual(['processed', 'claim-lost']);
    expect((await l.pluginRuns([a, b])).get(b)).toEqual([]);
    expect((await l.get(b))?.state).toBe('fetched');
    await l.close();
  });

  it('a rewrite with the same size and mtime but another ETag is a new version', async () => {
    const l = await open();
    const old = T0 - 3_600_000;
    const v1: Observation = { entry: { ...entry('e.bufr', 10, old).entry, etag: '"a1"' } };
    const { ready } = await l.observe('s', [v1], opts(T0));
    expect(ready.map((r) => r.etag)).toEqual(['"a1"']);
    await l.claimForFetch([ready[0]!.id], 'A', T0 + 60_000, T0);
    await l.markFetched([{ id: ready[0]!.id, localPath: '/l/e.bufr' }], 'A', T0);
    expect((await l.observe('s', [v1], opts(T0 + 1000))).counts.unchanged).toBe(1);
    const v2: Observation = { entry: { ...v1.entry, etag: '"a2"' } };
    const changed = await l.observe('s', [v2], opts(T0 + 2000));
    expect(changed.counts.changed).toBe(1);
    expect(changed.ready.map((r) => r.etag)).toEqual(['"a2"']);
    expect((await l.history('s', 'e.bufr')).map((r) => [r.state, r.etag])).toEqual([
      ['seen', '"a2"'],
      ['fetched', '"a1"'],
    ]);
    await l.close();
  });

  it('a listing of 25,000 entries is recorded in one call and claimed once between two connections', async () => {
    const opened = await backend.open();
    const a = opened.ledger;
    const b = await opened.reopen();
    const old = T0 - 3_600_000;
    // Past PostgreSQL's 65,535-parameter cap if each row had its own placeholders, and past one chunk.
    const listing = Array.from({ length: 25_000 }, (_, i) =>
      entry(`big/${String(i).padStart(5, '0')}.bufr`, i + 1, old),
    );
    const r = await a.observe('s', listing, opts(T0));
    expect(r.counts).toMatchObject({ listed: 25_000, new: 25_000, settling: 0 });
    expect(r.ready).toHaveLength(25_000);
    expect(r.ready[12_345]?.path).toBe('big/12345.bufr');
    // Both claim every id at once, in opposite orders: each id goes to exactly one of them.
    const ids = r.ready.map((x) => x.id);
    const [gotA, gotB] = await Promise.all([
      a.claimForFetch(ids, 'A', T0 + 60_000, T0),
      b.claimForFetch([...ids].reverse(), 'B', T0 + 60_000, T0),
    ]);
    expect(gotA.length + gotB.length).toBe(25_000);
    const taken = new Set([...gotA, ...gotB].map((x) => x.id));
    expect(taken.size).toBe(25_000);
    expect((await a.observe('s', listing, opts(T0 + 1))).counts).toMatchObject({ unchanged: 25_000, new: 0 });
  });

  it('a lease renewal returns the claims this owner no longer holds', async () => {
    const l = await open();
    const { ready } = await l.observe('s', [entry('r.bufr', 3, T0 - 3_600_000)], opts(T0));
    const id = ready[0]!.id;
    expect(await l.claimForFetch([id], 'A', T0 + 60_000, T0)).toHaveLength(1);
    expect(await l.renewLeases([id], 'A', T0 + 120_000)).toEqual([]);
    // Another owner renewing it holds nothing; and once released, A holds nothing either.
    expect(await l.renewLeases([id], 'B', T0 + 120_000)).toEqual([id]);
    await l.releaseFetch([id], 'A', T0 + 1);
    expect(await l.renewLeases([id], 'A', T0 + 120_000)).toEqual([id]);
  });

  it('status reports polls and counts per source, including sources only seen in files', async () => {
    const l = await open();
    const old = T0 - 3_600_000;
    const { ready } = await l.observe('s', [entry('a', 1, old), entry('b', 2, old)], opts(T0));
    await l.observe('t', [entry('c', 1, T0)], opts(T0));
    await l.claimForFetch([ready[0]!.id], 'A', T0 + 60_000, T0);
    await l.markFetched([{ id: ready[0]!.id, localPath: '/l/a', done: true }], 'A', T0);
    await l.recordPoll('s', 'ftp://h/', false, 'boom\nsecond line', T0);
    await l.recordPoll('s', 'ftp://h/', true, null, T0 + 5);
    const status = await l.status();
    expect(status.map((x) => x.name)).toEqual(['s', 't']);
    expect(status[0]).toMatchObject({
      displayUrl: 'ftp://h/',
      lastPollMs: T0 + 5,
      lastSuccessMs: T0 + 5,
      lastError: null,
      counts: { processed: 1, seen: 1 },
      newestFetchedMtimeMs: old,
    });
    expect(status[1]).toMatchObject({ displayUrl: null, lastPollMs: null, counts: { seen: 1 } });
    expect(await l.stats()).toMatchObject({ fileRows: 3, pluginRunRows: 0 });
    expect((await l.files({ path: 'A' })).map((f) => f.path)).toEqual(['a']);
    expect((await l.history('s', 'a')).map((f) => f.state)).toEqual(['processed']);
    expect((await l.liveFetches()).map((f) => f.sizeBytes).sort()).toEqual([1, 2]);
  });
});

describe.each(LEDGER_BACKENDS)('ledger contract, removed upstream: $name', (backend) => {
  closeLedgersAfterEach();

  const cover = (present: string[], dirs: string[] = ['', 'd'], mtimeFromMs?: number): ListingCoverage => ({
    present: new Set(present),
    covers: (p) => dirs.includes(path.posix.dirname(p) === '.' ? '' : path.posix.dirname(p)),
    ...(mtimeFromMs !== undefined && { mtimeFromMs }),
  });

  it('a version missing from N complete listings in a row is gone (once, with an event); a sighting between resets the count', async () => {
    const opened = await backend.open();
    const l = opened.ledger;
    if (!hasRemovedUpstream(l)) throw new Error('backend does not record removals');
    l.setOutbox([{ sink: 'ce', kinds: ['gone'], sources: null }]);
    const files = ['a.bufr', 'b.bufr', 'd/c.bufr', 'far/e.bufr', 'old.bufr'];
    await l.observe(
      's',
      files.map((p, i) => entry(p, 10, p === 'old.bufr' ? T0 - 40 * 86_400_000 : T0 - 3_600_000 - i)),
      opts(T0),
    );
    const { ready } = await l.observe(
      's',
      files.map((p, i) => entry(p, 10, p === 'old.bufr' ? T0 - 40 * 86_400_000 : T0 - 3_600_000 - i)),
      opts(T0 + 1000),
    );
    const claimed = await l.claimForFetch(
      ready.map((r) => r.id),
      'me',
      T0 + 60_000,
      T0 + 1000,
    );
    await l.markFetched(
      claimed.map((r) => ({ id: r.id, localPath: `/landing/s/${r.path}`, done: true })),
      'me',
      T0 + 1000,
    );
    const window = T0 - 30 * 86_400_000;
    // a.bufr and d/c.bufr vanish; far/ is not listed (outside the window); old.bufr is past maxAge.
    const listed = ['b.bufr'];
    const r1 = await l.recordAbsences('s', cover(listed, ['', 'd'], window), { nowMs: T0 + 2000, goneAfter: 3 });
    expect(r1).toMatchObject({ missing: 2, gone: [], back: 0 });
    // a.bufr shows up once in between: its count starts again.
    await l.recordAbsences('s', cover([...listed, 'a.bufr'], ['', 'd'], window), { nowMs: T0 + 3000, goneAfter: 3 });
    const r3 = await l.recordAbsences('s', cover(listed, ['', 'd'], window), { nowMs: T0 + 4000, goneAfter: 3 });
    expect(r3.gone.map((g) => [g.path, g.state, g.goneMs, g.localPath])).toEqual([
      ['d/c.bufr', 'gone', T0 + 4000, '/landing/s/d/c.bufr'],
    ]);
    expect(r3.missing).toBe(1);
    await l.recordAbsences('s', cover(listed, ['', 'd'], window), { nowMs: T0 + 5000, goneAfter: 3 });
    const r5 = await l.recordAbsences('s', cover(listed, ['', 'd'], window), { nowMs: T0 + 6000, goneAfter: 3 });
    expect(r5.gone.map((g) => g.path)).toEqual(['a.bufr']);
    // Never twice, never outside what was listed.
    const r6 = await l.recordAbsences('s', cover(listed, ['', 'd'], window), { nowMs: T0 + 7000, goneAfter: 3 });
    expect(r6).toMatchObject({ missing: 0, gone: [], back: 0 });
    const gone = await l.files({ source: 's', state: 'gone' });
    expect(gone.map((f) => f.path).sort()).toEqual(['a.bufr', 'd/c.bufr']);
    expect((await l.files({ source: 's', path: 'far/e.bufr' }))[0]?.state).toBe('processed');
    expect((await l.files({ source: 's', path: 'old.bufr' }))[0]?.state).toBe('processed');
    const events = await l.pendingEvents('ce', 10);
    expect(events.map((e) => [e.kind, e.fact.path, e.fact.localPath])).toEqual([
      ['gone', 'd/c.bufr', '/landing/s/d/c.bufr'],
      ['gone', 'a.bufr', '/landing/s/a.bufr'],
    ]);
    expect((await l.status()).find((s) => s.name === 's')?.counts.gone).toBe(2);
    // Listed again: seen, and fetched anew once it settles.
    const back = await l.recordAbsences('s', cover([...listed, 'a.bufr'], ['', 'd'], window), {
      nowMs: T0 + 8000,
      goneAfter: 3,
    });
    expect(back.back).toBe(1);
    const again = await l.observe('s', [entry('a.bufr', 10, T0 - 3_600_000)], opts(T0 + 9000));
    expect(again.ready.map((r) => r.path)).toEqual(['a.bufr']);
    // Retention prunes gone versions like processed ones.
    const pruned = await l.prune(
      { windows: [{ source: 's', mtimeBeforeMs: T0 }], quarantinedBeforeMs: 0 },
      { limit: 100, nowMs: T0 + 10_000 },
    );
    expect(pruned.files).toBeGreaterThanOrEqual(1);
    expect(await l.files({ source: 's', state: 'gone' })).toEqual([]);
    await l.close();
  });
});

describe.each(LEDGER_BACKENDS)('ledger contract, deleted upstream (WIS2 deletion): $name', (backend) => {
  closeLedgersAfterEach();

  it('versions up to the deletion are gone with who said so and when; in flight waits; unknown and repeats change nothing', async () => {
    const opened = await backend.open();
    const l = opened.ledger;
    if (!hasRemovedUpstream(l)) throw new Error('backend does not record removals');
    l.setOutbox([{ sink: 'ce', kinds: ['gone'], sources: null }]);
    const old = T0 - 3_600_000;
    await l.observe('s', [entry('a.bufr', 10, old), entry('b.bufr', 10, old)], opts(T0));
    const { ready } = await l.observe('s', [entry('a.bufr', 10, old), entry('b.bufr', 10, old)], opts(T0 + 1000));
    const claimed = await l.claimForFetch(
      ready.map((r) => r.id),
      'me',
      T0 + 60_000,
      T0 + 1000,
    );
    const a = claimed.find((r) => r.path === 'a.bufr');
    if (!a) throw new Error('a.bufr not claimed');
    await l.markFetched([{ id: a.id, localPath: '/landing/s/a.bufr', done: true }], 'me', T0 + 1000);
    const by = 'WIS2 notification 1234';
    // b.bufr is being fetched: the deletion waits for it.
    const busy = await l.recordDeletion('s', { path: 'b.bufr', atMs: T0 + 1500, by }, { nowMs: T0 + 2000 });
    expect(busy).toMatchObject({ gone: [], known: true, busy: true });
    const r = await l.recordDeletion('s', { path: 'a.bufr', atMs: T0 + 1500, by }, { nowMs: T0 + 2000 });
    expect(r.busy).toBe(false);
    expect(r.gone.map((g) => [g.path, g.state, g.goneMs, g.goneBy, g.localPath])).toEqual([
      ['a.bufr', 'gone', T0 + 1500, by, '/landing/s/a.bufr'],
    ]);
    // Again (a replay), and for a path never seen: nothing.
    expect(await l.recordDeletion('s', { path: 'a.bufr', atMs: T0 + 1500, by }, { nowMs: T0 + 3000 })).toMatchObject({
      gone: [],
      known: true,
    });
    expect(await l.recordDeletion('s', { path: 'zz.bufr', atMs: T0, by }, { nowMs: T0 + 3000 })).toEqual({
      gone: [],
      known: false,
      busy: false,
    });
    // A version announced after the deletion is a new file: not gone.
    await l.observe('s', [entry('a.bufr', 11, T0 + 5000)], opts(T0 + 6000));
    await l.recordDeletion('s', { path: 'a.bufr', atMs: T0 + 1500, by }, { nowMs: T0 + 7000 });
    expect((await l.history('s', 'a.bufr')).map((f) => f.state).sort()).toEqual(['gone', 'seen']);
    const events = await l.pendingEvents('ce', 10);
    expect(events.map((e) => [e.kind, e.fact.path, e.fact.localPath, e.fact.goneBy])).toEqual([
      ['gone', 'a.bufr', '/landing/s/a.bufr', by],
    ]);
    await l.close();
  });
});

describe('SQLite ledger migrations', () => {
  it('migrating a ledger from before ETags keeps every row, id and plugin run', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'poller-ledger-')), 'ledger.db');
    const etagStep = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE files_etag'));
    expect(etagStep).toBeGreaterThan(0);
    const db = new Database(file);
    for (let i = 0; i < etagStep; i++) db.exec(MIGRATIONS[i]!);
    db.pragma(`user_version = ${etagStep}`);
    db.exec(`INSERT INTO files (id, source, path, size_bytes, mtime_ms, mtime_precision, state, first_seen_ms,
               last_seen_ms, updated_ms, fetched_ms) VALUES (41, 's', 'm.bufr', 5, ${T0}, 's', 'processed', 1, 1, 1, 1);
             INSERT INTO plugin_runs (file_id, plugin, state, updated_ms) VALUES (41, 'p', 'succeeded', 1);`);
    db.close();
    const l = new SqliteLedger(file);
    const [row] = await l.history('s', 'm.bufr');
    expect(row).toMatchObject({ id: 41, state: 'processed', sizeBytes: 5 });
    expect(row?.etag).toBeUndefined();
    expect((await l.pluginRuns([41])).get(41)?.map((r) => r.state)).toEqual(['succeeded']);
    // The old version, now listed with an ETag, is still the same version (no ETag on one side).
    const again = await l.observe('s', [{ entry: { ...entry('m.bufr', 5, T0).entry, etag: '"x"' } }], opts(T0 + 1000));
    expect(again.counts.unchanged).toBe(1);
    await l.close();
  });
});
