import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCloudEvent } from '../../src/events/cloudevents.js';
import { productEvent } from '../../src/lateness/events.js';
import type { Ledger, Observation, OutboxEvent } from '../../src/ledger/ledger.js';
import { closeLedgersAfterEach, LEDGER_BACKENDS } from '../helpers/ledger-backends.js';

const T0 = Date.UTC(2026, 10, 23, 12);
const OLD = T0 - 3_600_000;

function entry(p: string, sizeBytes: number, mtimeMs = OLD): Observation {
  return {
    entry: { path: p, name: path.posix.basename(p), type: 'file', sizeBytes, mtimeMs, mtimePrecision: 's' },
  };
}

const OPTS = { nowMs: T0, minAgeMs: 0, stableListings: 2, oldEnoughMs: 60_000 };

/** Lands the given entries of source `s` through claim → fetched. */
async function land(l: Ledger, entries: Observation[], sha = 'aGFzaA==') {
  const { ready } = await l.observe('s', entries, OPTS);
  const claimed = await l.claimForFetch(
    ready.map((r) => r.id),
    'me',
    T0 + 60_000,
    T0,
  );
  await l.markFetched(
    claimed.map((r) => ({ id: r.id, localPath: `/land/${r.path}`, sha512: sha })),
    'me',
    T0 + 1,
  );
  return claimed;
}

describe.each(LEDGER_BACKENDS)('ledger outbox: $name', (backend) => {
  closeLedgersAfterEach();
  const newLedger = async () => (await backend.open()).ledger;

  it('writes nothing without sinks', async () => {
    const l = await newLedger();
    await land(l, [entry('a.h5', 10)]);
    expect(await l.outboxStats()).toEqual([]);
    await l.close();
  });

  it('writes one row per routed sink in the transition, in order, with one id per transition', async () => {
    const l = await newLedger();
    l.setOutbox([
      { sink: 'mq', kinds: ['fetched', 'failed'], sources: null },
      { sink: 'other', kinds: ['fetched'], sources: ['elsewhere'] },
    ]);
    await land(l, [entry('a.h5', 10), entry('b.h5', 20)]);
    const pending = await l.pendingEvents('mq', 10);
    expect(pending.map((e) => [e.kind, e.fact.path, e.fact.sha512, e.fact.update])).toEqual([
      ['fetched', 'a.h5', 'aGFzaA==', false],
      ['fetched', 'b.h5', 'aGFzaA==', false],
    ]);
    expect(pending[0]?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await l.pendingEvents('other', 10)).toEqual([]);
    const stats = await l.outboxStats();
    expect(stats.find((s) => s.sink === 'mq')).toMatchObject({ pending: 2, oldestPendingMs: T0 + 1 });
    expect(stats.find((s) => s.sink === 'other')).toMatchObject({ pending: 0 });

    // Sent on acknowledgement; the rest stays pending, and the same row comes back with the same id.
    await l.markEventsSent('mq', [pending[0]?.seq ?? 0], T0 + 2);
    const rest = await l.pendingEvents('mq', 10);
    expect(rest.map((e) => e.id)).toEqual([pending[1]?.id]);
    // Sent rows are pruned after the retention; pending rows never are.
    expect(await l.pruneSentEvents(T0 + 3)).toBe(1);
    expect(await l.pendingEvents('mq', 10)).toHaveLength(1);
    await l.close();
  });

  it('a changed version is an update; failures and quarantines are lifecycle events', async () => {
    const l = await newLedger();
    l.setOutbox([{ sink: 'all', kinds: ['fetched', 'failed', 'quarantined', 'processed', 'output'], sources: null }]);
    await land(l, [entry('a.h5', 10)]);
    await land(l, [entry('a.h5', 11, OLD + 1000)]);
    const { ready } = await l.observe('s', [entry('bad.h5', 5)], OPTS);
    const [bad] = await l.claimForFetch([ready[0]?.id ?? 0], 'me', T0 + 60_000, T0);
    await l.markFetchFailed(
      [
        {
          id: bad?.id ?? 0,
          failure: { errorCode: 'POLLER_X', message: 'gone', nextRetryMs: null, quarantine: true },
        },
      ],
      'me',
      T0 + 5,
    );
    const [first] = await l.pendingEvents('all', 1);
    const all = await l.pendingEvents('all', 10);
    expect(first?.seq).toBe(all[0]?.seq);
    expect(all.map((e) => [e.kind, e.fact.path, e.fact.update ?? null, e.fact.errorCode ?? null])).toEqual([
      ['fetched', 'a.h5', false, null],
      ['fetched', 'a.h5', true, null],
      ['quarantined', 'bad.h5', null, 'POLLER_X'],
    ]);

    // Processing: outputs and the processed event, written with the outcome.
    const [a] = await l.claimForProcessing('s', 'me', T0 + 60_000, T0, 1);
    await l.markPluginRunning([{ fileId: a?.id ?? 0, plugin: 'p' }], T0);
    await l.finishProcessing(
      [{ id: a?.id ?? 0, outcomes: [{ plugin: 'p', ok: true, durationMs: 1, outputs: [{ path: '/out/a.json' }] }] }],
      'me',
      T0 + 6,
    );
    const after = (await l.pendingEvents('all', 10)).slice(3);
    expect(after.map((e) => [e.kind, e.fact.output?.path ?? null])).toEqual([
      ['output', '/out/a.json'],
      ['processed', null],
    ]);
    await l.close();
  });

  it('a lost claim writes no event', async () => {
    const l = await newLedger();
    l.setOutbox([{ sink: 'mq', kinds: ['fetched'], sources: null }]);
    const { ready } = await l.observe('s', [entry('a.h5', 10)], OPTS);
    await l.claimForFetch([ready[0]?.id ?? 0], 'someone-else', T0 + 60_000, T0);
    const lost = await l.markFetched([{ id: ready[0]?.id ?? 0, localPath: '/x' }], 'me', T0);
    expect(lost).toHaveLength(1);
    expect(await l.pendingEvents('mq', 10)).toEqual([]);
    await l.close();
  });
  it('writes a late / on-time event of a product to each sink that wants it, with no file', async () => {
    const l = await newLedger();
    l.setOutbox([
      { sink: 'alerts', kinds: ['late', 'on-time'], sources: null },
      { sink: 'files', kinds: ['fetched'], sources: null },
      { sink: 'other', kinds: ['late'], sources: ['elsewhere'] },
    ]);
    const { kind, fact } = productEvent({
      source: 's',
      product: 'ARPAR',
      state: 'late',
      status: {
        source: 's',
        product: 'ARPAR',
        state: 'late',
        everyMs: 300_000,
        graceMs: 120_000,
        newestMtimeMs: T0 - 600_000,
        arrivedMs: T0 - 590_000,
        lateAtMs: T0 - 170_000,
      },
    });
    await l.emitProductEvent(kind, 's', fact, T0);
    await l.emitProductEvent('on-time', 's', { ...fact, product: { ...fact.product!, arrivedMs: T0 + 5 } }, T0 + 10);
    const pending = await l.pendingEvents('alerts', 10);
    expect(pending.map((e) => [e.kind, e.source, e.fileId, e.fact.path, e.atMs])).toEqual([
      ['late', 's', 0, 'ARPAR', T0],
      ['on-time', 's', 0, 'ARPAR', T0 + 10],
    ]);
    expect(pending[0]?.fact.product).toEqual({
      product: 'ARPAR',
      everyMs: 300_000,
      graceMs: 120_000,
      newestMtimeMs: T0 - 600_000,
      arrivedMs: T0 - 590_000,
      lateAtMs: T0 - 170_000,
    });
    expect(pending[0]?.id).not.toBe(pending[1]?.id);
    expect(await l.pendingEvents('files', 10)).toEqual([]);
    expect(await l.pendingEvents('other', 10)).toEqual([]);

    const ce = buildCloudEvent(pending[0] as OutboxEvent, 'demo');
    expect(ce).toMatchObject({
      type: 'org.poller.product.late',
      source: '/poller/demo/s',
      subject: 'ARPAR',
      severity: 'warning',
      data: {
        product: 'ARPAR',
        state: 'late',
        every: 300,
        grace: 120,
        title: 's: ARPAR is late (nothing within 420 s)',
      },
    });
    expect(buildCloudEvent(pending[1] as OutboxEvent, 'demo')).toMatchObject({
      type: 'org.poller.product.on-time',
      severity: 'info',
    });
  });

  it('writes no product event when no sink wants it', async () => {
    const l = await newLedger();
    l.setOutbox([{ sink: 'files', kinds: ['fetched'], sources: null }]);
    await l.emitProductEvent('late', 's', { path: 'ARPAR', sizeBytes: 0, mtimeMs: 0 }, T0);
    expect((await l.outboxStats()).find((s) => s.sink === 'files')?.pending).toBe(0);
  });
});
