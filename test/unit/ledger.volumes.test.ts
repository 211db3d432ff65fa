import { describe, expect, it } from 'vitest';
import type { Ledger, Observation } from '../../src/ledger/ledger.js';
import type { MemberArrival, VolumeLedger } from '../../src/ledger/volume-ledger.js';
import type { CompletenessRules } from '../../src/volumes/completeness.js';
import { compileKeyPattern, matchMember } from '../../src/volumes/key-pattern.js';
import { closeLedgersAfterEach, LEDGER_BACKENDS, type LedgerBackend } from '../helpers/ledger-backends.js';

const T0 = Date.UTC(2026, 10, 23, 12);
const PATTERN = compileKeyPattern('(?<radar>RMA\\d+)_(?<moment>[A-Z]+)_(?<time>\\d{8}T\\d{4}Z)', 'moment').pattern!;
const RULES: CompletenessRules = {
  expect: ['DBZH', 'VRAD', 'ZDR'],
  minimum: 2,
  completeAfterMs: 60_000,
  reopenLate: false,
};

/** A fresh ledger of the backend; `reopen` is a second connection (another process) to it. */
async function openOn(backend: LedgerBackend) {
  const opened = await backend.open();
  return { l: opened.ledger, v: opened.ledger.volumes, reopen: opened.reopen };
}

/** Land a file through the file ledger (listed, claimed, fetched) at `nowMs`. */
async function land(l: Ledger, p: string, nowMs: number, sizeBytes = 10): Promise<void> {
  const obs: Observation = {
    entry: { path: p, name: p, type: 'file', sizeBytes, mtimeMs: nowMs - 3_600_000, mtimePrecision: 's' },
  };
  const r = await l.observe('s', [obs], { nowMs, minAgeMs: 0, stableListings: 2, oldEnoughMs: 60_000 });
  const claimed = await l.claimForFetch(
    r.ready.map((x) => x.id),
    'me',
    nowMs + 60_000,
    nowMs,
  );
  await l.markFetched(
    claimed.map((c) => ({ id: c.id, localPath: `/landing/${p}`, done: true })),
    'me',
    nowMs,
  );
}

/** What the engine's volume stage does: group what landed and record it. */
async function stage(v: VolumeLedger, nowMs: number, rules = RULES) {
  const landed = await v.landedFiles('s', 0, 100);
  const arrivals: MemberArrival[] = [];
  for (const f of landed) {
    const m = matchMember(PATTERN, f.path);
    if (m) arrivals.push({ ...f, ...m, fields: { radar: m.fields['radar']!, time: m.fields['time']! } });
  }
  return v.assignMembers(
    's',
    arrivals,
    landed.map((f) => f.fileId),
    rules,
    nowMs,
  );
}

const ok = (plugin: string) => ({ plugin, ok: true, durationMs: 1, outputs: [] });

describe.each(LEDGER_BACKENDS)('volume ledger contract: $name', (backend) => {
  closeLedgersAfterEach();
  const open = () => openOn(backend);

  it('collects members, completes when every expected one is there, and is claimed once', async () => {
    const { l, v, reopen } = await open();
    await land(l, 'RMA1_DBZH_20261123T1200Z.BUFR', T0);
    await land(l, 'other.txt', T0);
    await land(l, 'RMA1_VRAD_20261123T1200Z.BUFR', T0 + 1000);
    const first = await stage(v, T0 + 1000);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ key: 'RMA1_20261123T1200Z', state: 'collecting', version: 1 });
    expect(first[0]?.fields).toEqual({ radar: 'RMA1', time: '20261123T1200Z' });
    // Nothing new: the stage has looked at every landed file already.
    expect(await v.landedFiles('s', 0, 100)).toEqual([]);
    await land(l, 'RMA1_ZDR_20261123T1200Z.BUFR', T0 + 2000);
    const [done] = await stage(v, T0 + 2000);
    expect(done).toMatchObject({ state: 'complete', partial: false, firstMemberMs: T0, lastMemberMs: T0 + 2000 });
    expect(done?.members.map((m) => m.member)).toEqual(['DBZH', 'VRAD', 'ZDR']);

    // Two connections (a daemon and a run-once): one claim wins.
    const other = await reopen();
    const [a, b] = await Promise.all([
      v.claimVolumes('s', 'A', T0 + 600_000, T0 + 3000, 10),
      other.volumes.claimVolumes('s', 'B', T0 + 600_000, T0 + 3000, 10),
    ]);
    expect(a.length + b.length).toBe(1);
    const owner = a.length ? 'A' : 'B';
    const id = (a[0] ?? b[0])!.id;
    expect(await v.markVolumeRunning([{ volumeId: id, plugin: 'p' }], T0 + 3000)).toEqual([1]);
    expect(await v.finishVolumes([{ id, outcomes: [ok('p')] }], owner === 'A' ? 'B' : 'A', T0 + 3000)).toEqual([
      'claim-lost',
    ]);
    expect(await v.finishVolumes([{ id, outcomes: [ok('p')] }], owner, T0 + 3000)).toEqual(['processed']);
    expect(await v.claimVolumes('s', 'A', T0 + 600_000, T0 + 4000, 10)).toEqual([]);
    expect((await v.volumeRuns([id])).get(id)).toMatchObject([{ plugin: 'p', state: 'succeeded', attempts: 1 }]);
    expect(await v.volumeCounts()).toMatchObject([{ source: 's', state: 'processed', count: 1 }]);
  });

  it('declares a quiet volume partial with the minimum, and leaves one below it collecting', async () => {
    const { l, v } = await open();
    await land(l, 'RMA1_DBZH_20261123T1200Z.BUFR', T0);
    await land(l, 'RMA1_VRAD_20261123T1200Z.BUFR', T0);
    await land(l, 'RMA2_DBZH_20261123T1200Z.BUFR', T0);
    await stage(v, T0);
    expect(await v.closeDue('s', RULES, T0 + 59_999)).toEqual([]);
    const closed = await v.closeDue('s', RULES, T0 + 60_000);
    expect(closed.map((c) => [c.key, c.state, c.partial])).toEqual([['RMA1_20261123T1200Z', 'partial', true]]);
    expect((await v.volumes({ key: 'RMA2_20261123T1200Z' }))[0]?.state).toBe('collecting');
    expect(await v.claimVolumes('s', 'A', T0 + 600_000, T0 + 60_000, 10)).toHaveLength(1);
  });

  it('a changed member reopens a processed volume as a new version; a late new member only with reopenLate', async () => {
    const { l, v } = await open();
    for (const m of ['DBZH', 'VRAD', 'ZDR']) await land(l, `RMA1_${m}_20261123T1200Z.BUFR`, T0);
    await stage(v, T0);
    const [c] = await v.claimVolumes('s', 'A', T0 + 600_000, T0, 10);
    await v.finishVolumes([{ id: c!.id, outcomes: [ok('p')] }], 'A', T0);
    // Same path, new version (size changed).
    await land(l, 'RMA1_VRAD_20261123T1200Z.BUFR', T0 + 5000, 20);
    const [reopened] = await stage(v, T0 + 5000);
    expect(reopened).toMatchObject({ version: 2, state: 'complete' });
    expect(reopened?.digest).not.toBe(c?.digest);
    expect((await v.volumes({ key: reopened!.key })).map((x) => [x.version, x.state])).toEqual([
      [2, 'complete'],
      [1, 'processed'],
    ]);

    // A member it did not have, after it left collecting: recorded, the runs stand.
    const rules = { ...RULES, expect: [] as string[], minimum: 1 };
    await land(l, 'RMA3_DBZH_20261123T1200Z.BUFR', T0);
    await stage(v, T0, rules);
    await v.closeDue('s', rules, T0 + 60_000);
    await land(l, 'RMA3_KDP_20261123T1200Z.BUFR', T0 + 70_000);
    expect(await stage(v, T0 + 70_000, rules)).toEqual([]);
    expect((await v.volumesOfPath('s', 'RMA3_KDP_20261123T1200Z.BUFR')).map((x) => x.version)).toEqual([1]);
    await land(l, 'RMA3_ZDR_20261123T1200Z.BUFR', T0 + 80_000);
    const [late] = await stage(v, T0 + 80_000, { ...rules, reopenLate: true });
    expect(late).toMatchObject({ version: 2, state: 'collecting' });
    // The late KDP recorded against version 1 joins version 2 too.
    expect(late?.members.map((m) => m.member)).toEqual(['DBZH', 'KDP', 'ZDR']);
    // A member replaced while collecting does not come back in a later version.
    await land(l, 'RMA4_DBZH_20261123T1200Z.BUFR', T0, 10);
    await land(l, 'RMA4_VRAD_20261123T1200Z.BUFR', T0, 10);
    await stage(v, T0, rules);
    await land(l, 'RMA4_VRAD_20261123T1200Z.BUFR', T0 + 1, 11); // replaces VRAD while collecting
    await stage(v, T0 + 1, rules);
    await v.closeDue('s', rules, T0 + 70_000);
    await land(l, 'RMA4_DBZH_20261123T1200Z.BUFR', T0 + 80_000, 12); // changed: reopens
    const [four] = await stage(v, T0 + 80_000, rules);
    expect(four?.version).toBe(2);
    expect(four?.members.map((m) => [m.member, m.sizeBytes])).toEqual([
      ['DBZH', 12],
      ['VRAD', 11],
    ]);
    // Version 1 had not run: it is superseded by version 2.
    expect((await v.volumes({ key: 'RMA3_20261123T1200Z' }))[1]?.state).toBe('superseded');
  });

  it('a claim of a dead owner is taken back and its running run counts as a crashed attempt', async () => {
    const { l, v } = await open();
    for (const m of ['DBZH', 'VRAD', 'ZDR']) await land(l, `RMA1_${m}_20261123T1200Z.BUFR`, T0);
    await stage(v, T0);
    const [c] = await v.claimVolumes('s', 'dead', T0 + 600_000, T0, 10);
    await v.markVolumeRunning([{ volumeId: c!.id, plugin: 'p' }], T0);
    expect(await v.recoverStaleVolumes(T0 + 1, () => false)).toBe(0);
    expect(await v.recoverStaleVolumes(T0 + 1, (o) => o === 'dead')).toBe(1);
    expect((await v.volumeRuns([c!.id])).get(c!.id)).toMatchObject([
      { state: 'failed', errorCode: 'POLLER_PLUGIN_CRASHED', attempts: 1 },
    ]);
    const [again] = await v.claimVolumes('s', 'B', T0 + 600_000, T0 + 2, 10);
    expect(again?.id).toBe(c?.id);
    expect(await v.markVolumeRunning([{ volumeId: c!.id, plugin: 'p' }], T0 + 2)).toEqual([2]);
    const failed = {
      plugin: 'p',
      ok: false,
      errorCode: 'X',
      message: 'boom',
      durationMs: 1,
      outputs: [],
      nextRetryMs: T0 + 10,
    };
    expect(await v.finishVolumes([{ id: c!.id, outcomes: [failed] }], 'B', T0 + 3)).toEqual(['failed']);
    expect(await v.claimVolumes('s', 'B', T0 + 600_000, T0 + 5, 10)).toEqual([]);
    expect(await v.claimVolumes('s', 'B', T0 + 600_000, T0 + 10, 10)).toHaveLength(1);
  });
});

describe.each(LEDGER_BACKENDS)('volume retention: $name', (backend) => {
  closeLedgersAfterEach();
  const open = () => openOn(backend);

  it('prunes done and stale volumes past the window, keeps those still owed a run', async () => {
    const { l, v } = await open();
    for (const m of ['DBZH', 'VRAD', 'ZDR']) await land(l, `RMA1_${m}_20261123T1200Z.BUFR`, T0);
    await land(l, 'RMA2_DBZH_20261123T1200Z.BUFR', T0); // stays collecting (below the minimum)
    for (const m of ['DBZH', 'VRAD', 'ZDR']) await land(l, `RMA3_${m}_20261123T1200Z.BUFR`, T0); // complete, not run
    await stage(v, T0);
    const [c] = await v.claimVolumes('s', 'A', T0 + 600_000, T0, 1);
    await v.finishVolumes([{ id: c!.id, outcomes: [ok('p')] }], 'A', T0);
    const rules = { windows: [{ source: 's', mtimeBeforeMs: T0 + 1 }], quarantinedBeforeMs: 0 };
    expect(await v.pruneVolumes(rules, { limit: 100, dryRun: true })).toEqual({ volumes: 2, more: false });
    expect(await v.pruneVolumes(rules, { limit: 1 })).toEqual({ volumes: 1, more: true });
    expect(await v.pruneVolumes(rules, { limit: 100 })).toEqual({ volumes: 1, more: false });
    expect((await v.volumes({})).map((x) => x.state)).toEqual(['complete']);
    // Before the window: nothing goes.
    expect(
      await v.pruneVolumes({ windows: [{ source: 's', mtimeBeforeMs: T0 }], quarantinedBeforeMs: 0 }, { limit: 100 }),
    ).toEqual({ volumes: 0, more: false });
  });

  it('forget takes a file out of a collecting volume, and marks it forgotten in one that ran', async () => {
    const { l, v } = await open();
    for (const m of ['DBZH', 'VRAD']) await land(l, `RMA6_${m}_20261123T1200Z.BUFR`, T0);
    for (const m of ['DBZH', 'VRAD', 'ZDR']) await land(l, `RMA7_${m}_20261123T1200Z.BUFR`, T0);
    await stage(v, T0);
    const [c] = await v.claimVolumes('s', 'A', T0 + 600_000, T0, 10);
    await v.finishVolumes([{ id: c!.id, outcomes: [ok('p')] }], 'A', T0);
    expect(await l.forget({ source: 's', path: 'RMA6_VRAD_20261123T1200Z.BUFR' })).toBe(1);
    expect(await l.forget({ source: 's', path: 'RMA7_ZDR_20261123T1200Z.BUFR' })).toBe(1);
    const [collecting] = await v.volumes({ key: 'RMA6_20261123T1200Z' });
    expect(collecting?.members.map((m) => m.member)).toEqual(['DBZH']);
    // The processed one keeps its history; the same file landing again makes a new version.
    const [ran] = await v.volumes({ key: 'RMA7_20261123T1200Z' });
    expect(ran?.members.map((m) => m.member)).toEqual(['DBZH', 'VRAD', 'ZDR']);
    await land(l, 'RMA7_ZDR_20261123T1200Z.BUFR', T0 + 1000);
    await land(l, 'RMA6_VRAD_20261123T1200Z.BUFR', T0 + 1000);
    const touched = await stage(v, T0 + 1000);
    expect(touched.map((x) => [x.key, x.version, x.state, x.members.length]).sort()).toEqual([
      ['RMA6_20261123T1200Z', 1, 'collecting', 2],
      ['RMA7_20261123T1200Z', 2, 'complete', 3],
    ]);
  });

  it('runs of volume plugins removed from the config are owed nothing: not by the verdict, not by retention', async () => {
    const { l, v } = await open();
    for (const k of ['RMA8', 'RMA9'])
      for (const m of ['DBZH', 'VRAD', 'ZDR']) await land(l, `${k}_${m}_20261123T1200Z.BUFR`, T0);
    await stage(v, T0);
    const fail = (plugin: string) => ({
      plugin,
      ok: false,
      durationMs: 1,
      outputs: [],
      message: 'boom',
      nextRetryMs: T0 + 10,
    });
    const claimed = await v.claimVolumes('s', 'A', T0 + 600_000, T0, 10);
    expect(claimed).toHaveLength(2);
    const [a, b] = claimed;
    expect(
      await v.finishVolumes(
        [
          { id: a!.id, outcomes: [fail('gone')], configured: ['gone'] },
          { id: b!.id, outcomes: [fail('gone')], configured: ['gone'] },
        ],
        'A',
        T0,
      ),
    ).toEqual(['failed', 'failed']);
    // Past the window: a failed version is kept unless the configured plugins are known...
    const window = { windows: [{ source: 's', mtimeBeforeMs: T0 + 1 }], quarantinedBeforeMs: 0 };
    expect(await v.pruneVolumes(window, { limit: 100, dryRun: true })).toEqual({ volumes: 0, more: false });
    // ...and still owed while its failing plugin is configured.
    expect(await v.pruneVolumes({ ...window, volumePlugins: ['gone'] }, { limit: 100, dryRun: true })).toEqual({
      volumes: 0,
      more: false,
    });
    // `gone` was removed: the next run of `a` records only the configured plugin and is processed.
    const [again] = await v.claimVolumes('s', 'A', T0 + 600_000, T0 + 10, 1);
    expect(
      await v.finishVolumes([{ id: again!.id, outcomes: [ok('kept')], configured: ['kept'] }], 'A', T0 + 10),
    ).toEqual(['processed']);
    // The other one, never run again, goes with retention.
    expect(await v.pruneVolumes({ ...window, volumePlugins: ['kept'] }, { limit: 100 })).toEqual({
      volumes: 2,
      more: false,
    });
    expect(await v.volumes({})).toEqual([]);
  });
});
