import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import type { Ledger, Observation } from '../../src/ledger/ledger.js';
import { PRUNE_MARGIN_MS, pruneLedger, retentionPlan } from '../../src/ledger/retention.js';
import { closeLedgersAfterEach, LEDGER_BACKENDS } from '../helpers/ledger-backends.js';

const T0 = Date.UTC(2026, 11, 2, 12);
const DAY = 86_400_000;
const OWNER = 'A';

function obs(p: string, mtimeMs: number, rejectReason?: string): Observation {
  return {
    entry: { path: p, name: path.posix.basename(p), type: 'file', sizeBytes: 1, mtimeMs, mtimePrecision: 's' },
    ...(rejectReason && { rejectReason }),
  };
}

const observeOpts = { nowMs: T0, minAgeMs: 0, stableListings: 1, oldEnoughMs: 0 };

/** Take versions through fetch and one plugin pass with the given outcome. */
async function finish(l: Ledger, ids: number[], ok: boolean, quarantine = false): Promise<void> {
  await l.claimForFetch(ids, OWNER, T0 + 60_000, T0);
  await l.markFetched(
    ids.map((id) => ({ id, localPath: `/l/${id}` })),
    OWNER,
    T0,
  );
  await l.claimIdsForProcessing(ids, OWNER, T0 + 60_000, T0);
  await l.markPluginRunning(
    ids.map((fileId) => ({ fileId, plugin: 'p' })),
    T0,
  );
  const outcome = ok
    ? { plugin: 'p', ok: true, durationMs: 1, outputs: [] }
    : { plugin: 'p', ok: false, message: 'x', durationMs: 1, outputs: [], quarantine, nextRetryMs: T0 + 1000 };
  await l.finishProcessing(
    ids.map((id) => ({ id, outcomes: [outcome] })),
    OWNER,
    T0,
  );
}

describe.each(LEDGER_BACKENDS)('ledger retention: $name', (backend) => {
  closeLedgersAfterEach();
  const newLedger = async () => (await backend.open()).ledger;

  it('prunes done versions older than the window, with their plugin runs; keeps recent, in-flight and retrying rows', async () => {
    const l = await newLedger();
    const old = T0 - 10 * DAY;
    const { ready } = await l.observe(
      's',
      [
        obs('old/done', old),
        obs('old/failing', old),
        obs('old/quarantined', old),
        obs('old/fetched', old),
        obs('new/done', T0 - 1000),
      ],
      observeOpts,
    );
    const id = (p: string) => ready.find((r) => r.path === p)!.id;
    await l.observe('s', [obs('old/../evil', old, 'path component ".."')], observeOpts);
    await finish(l, [id('old/done'), id('new/done')], true);
    await finish(l, [id('old/failing')], false);
    await finish(l, [id('old/quarantined')], false, true);
    await l.claimForFetch([id('old/fetched')], OWNER, T0 + 60_000, T0);
    await l.markFetched([{ id: id('old/fetched'), localPath: '/l/f' }], OWNER, T0);
    const rules = { windows: [{ source: 's', mtimeBeforeMs: T0 - DAY }], quarantinedBeforeMs: T0 - DAY };

    const dry = await pruneLedger(l, rules, { nowMs: T0, dryRun: true });
    expect(dry).toMatchObject({ files: 2, pluginRuns: 1 });
    expect((await l.stats()).fileRows).toBe(6);

    const done = await pruneLedger(l, rules, { nowMs: T0 });
    expect(done).toMatchObject({ files: 2, pluginRuns: 1, more: false });
    const left = (await l.files({ limit: 100 })).map((f) => `${f.path}:${f.state}`).sort();
    expect(left).toEqual([
      'new/done:processed',
      'old/failing:failed',
      'old/fetched:fetched',
      'old/quarantined:quarantined',
    ]);
    expect((await l.stats()).pluginRunRows).toBe(3);

    // Past the quarantine hold, the quarantined version goes too.
    const later = await pruneLedger(l, { ...rules, quarantinedBeforeMs: T0 + 1 }, { nowMs: T0 });
    expect(later.files).toBe(1);
    expect(await l.history('s', 'old/quarantined')).toEqual([]);
    await l.close();
  });

  it('works in batches of the given size until nothing is left, and only on the sources it is given', async () => {
    const l = await newLedger();
    const old = T0 - 10 * DAY;
    const names = Array.from({ length: 7 }, (_, i) => `f${i}`);
    const a = await l.observe(
      'a',
      names.map((n) => obs(n, old)),
      observeOpts,
    );
    const b = await l.observe('b', [obs('g', old)], observeOpts);
    await finish(
      l,
      a.ready.map((r) => r.id),
      true,
    );
    await finish(
      l,
      b.ready.map((r) => r.id),
      true,
    );
    const first = await l.prune(
      { windows: [{ source: 'a', mtimeBeforeMs: T0 - DAY }], quarantinedBeforeMs: 0 },
      { limit: 3, nowMs: T0 },
    );
    expect(first).toEqual({ files: 3, pluginRuns: 3, more: true });
    const rest = await pruneLedger(
      l,
      { windows: [{ source: 'a', mtimeBeforeMs: T0 - DAY }], quarantinedBeforeMs: 0 },
      {
        nowMs: T0,
        batch: 3,
      },
    );
    expect(rest).toMatchObject({ files: 4, batches: 2, more: false });
    expect((await l.files({ limit: 100 })).map((f) => f.source)).toEqual(['b']);
    await l.close();
  });

  it('a pruned path is new to the ledger again: the quiet-version cache does not answer for it', async () => {
    const l = await newLedger();
    const old = T0 - 10 * DAY;
    const { ready } = await l.observe('s', [obs('x', old)], observeOpts);
    await finish(l, [ready[0]!.id], true);
    expect((await l.observe('s', [obs('x', old)], observeOpts)).counts.unchanged).toBe(1);
    await pruneLedger(l, { windows: [{ source: 's', mtimeBeforeMs: T0 }], quarantinedBeforeMs: 0 }, { nowMs: T0 });
    expect((await l.observe('s', [obs('x', old)], observeOpts)).counts.new).toBe(1);
    await l.close();
  });

  it('windows come from maxAge, or retention.keep for sources without one; others are unbounded', () => {
    const doc = {
      landing: './l',
      ledger: './l.db',
      retention: { keep: '30d', quarantined: '3d' },
      sources: [
        { name: 'with-age', url: 'file:///data/a', maxAge: '2d' },
        { name: 'kept', url: 'file:///data/b' },
      ],
    };
    const config = buildConfig(doc, '/');
    expect(config.sources.map((s) => s.maxAgeMs)).toEqual([2 * DAY, 30 * DAY]);
    const plan = retentionPlan(config, T0);
    expect(plan.unbounded).toEqual([]);
    expect(plan.rules.windows).toEqual([
      { source: 'with-age', mtimeBeforeMs: T0 - 2 * DAY - PRUNE_MARGIN_MS },
      { source: 'kept', mtimeBeforeMs: T0 - 30 * DAY - PRUNE_MARGIN_MS },
    ]);
    expect(plan.rules.quarantinedBeforeMs).toBe(T0 - 3 * DAY);
    const none = buildConfig({ ...doc, retention: {} }, '/');
    expect(retentionPlan(none, T0).unbounded).toEqual(['kept']);
  });
});
