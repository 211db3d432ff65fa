import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { SinkConfig } from '../../src/config/load.js';
import { formatEvent, isUnsendable } from '../../src/events/payload.js';
import { VolumeArchives } from '../../src/events/volume-archive.js';
import type { Ledger, Observation } from '../../src/ledger/ledger.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import type { MemberArrival, VolumeLedger } from '../../src/ledger/volume-ledger.js';
import type { CompletenessRules } from '../../src/volumes/completeness.js';
import { compileKeyPattern, matchMember } from '../../src/volumes/key-pattern.js';
import { closeLedgersAfterEach, LEDGER_BACKENDS } from '../helpers/ledger-backends.js';
import { wnmProblems } from '../helpers/wnm-schema.js';

const T0 = Date.UTC(2026, 10, 23, 12);
const PATTERN = compileKeyPattern('(?<radar>RMA\\d+)_(?<moment>[A-Z]+)_(?<time>\\d{8}T\\d{4}Z)', 'moment').pattern!;
const RULES: CompletenessRules = {
  expect: ['DBZH', 'VRAD', 'ZDR'],
  minimum: 2,
  completeAfterMs: 60_000,
  reopenLate: false,
};
const ALL_VOLUME_KINDS = [
  'volume-complete',
  'volume-partial',
  'volume-processed',
  'volume-failed',
  'volume-quarantined',
  'volume-output',
] as const;

function open() {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'poller-volout-')), 'ledger.db');
  const l = new SqliteLedger(file);
  return { l, v: l.volumes, file };
}

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

async function stage(v: VolumeLedger, nowMs: number) {
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
    RULES,
    nowMs,
  );
}

function volumeEventRows(file: string) {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare<[], { kind: string; sink: string; file_id: number; volume_id: number | null }>(
        `SELECT kind, sink, file_id, volume_id FROM events WHERE kind LIKE 'volume-%' ORDER BY seq`,
      )
      .all();
  } finally {
    db.close();
  }
}

/** The pending volume events of sink mq (file events left out). */
async function volumeEvents(l: Ledger) {
  return (await l.pendingEvents('mq', 100)).filter((e) => e.kind.startsWith('volume-'));
}

const output = { path: '/out/RMA1_20261123T1200Z.json', sizeBytes: 42 };

describe.each(LEDGER_BACKENDS)('volume ledger outbox: $name', (backend) => {
  closeLedgersAfterEach();
  const openAny = async () => {
    const { ledger } = await backend.open();
    return { l: ledger, v: ledger.volumes };
  };

  it('writes volume-complete, outputs and volume-processed with the volume and its members', async () => {
    const { l, v } = await openAny();
    l.setOutbox([{ sink: 'mq', kinds: [...ALL_VOLUME_KINDS], sources: null }]);
    for (const m of ['DBZH', 'VRAD', 'ZDR']) await land(l, `RMA1_${m}_20261123T1200Z.BUFR`, T0);
    const [vol] = await stage(v, T0);
    expect(vol?.state).toBe('complete');
    const [c] = await v.claimVolumes('s', 'A', T0 + 600_000, T0, 10);
    await v.finishVolumes(
      [{ id: c!.id, outcomes: [{ plugin: 'p', ok: true, durationMs: 1, outputs: [output] }] }],
      'A',
      T0 + 5,
    );
    const events = await l.pendingEvents('mq', 10);
    expect(events.map((e) => [e.kind, e.volumeId, e.fileId, e.fact.path])).toEqual([
      ['volume-complete', vol!.id, 0, 'RMA1_20261123T1200Z'],
      ['volume-output', vol!.id, 0, 'RMA1_20261123T1200Z'],
      ['volume-processed', vol!.id, 0, 'RMA1_20261123T1200Z'],
    ]);
    expect(events[0]?.fact.volume).toMatchObject({
      key: 'RMA1_20261123T1200Z',
      version: 1,
      fields: { radar: 'RMA1', time: '20261123T1200Z' },
      partial: false,
    });
    expect(events[0]?.fact.volume?.members.map((m) => m.member)).toEqual(['DBZH', 'VRAD', 'ZDR']);
    expect(events[0]?.fact.sizeBytes).toBe(30);
    expect(events[1]?.fact.output).toEqual(output);
    expect(events[2]?.fact.outputs).toEqual([output]);

    // On the wire: the handed-on volume is a WNM whose link is the volume's archive (members read
    // from the landing tree); the rest are CloudEvents.
    const landing = mkdtempSync(path.join(os.tmpdir(), 'poller-volout-landing-'));
    mkdirSync(path.join(landing, 's'), { recursive: true });
    for (const m of events[0]!.fact.volume!.members) writeFileSync(path.join(landing, 's', m.path), '0123456789');
    const sink = {
      name: 'mq',
      type: 'mqtt',
      kinds: [],
      sources: null,
      format: 'wnm',
      publicBaseUrl: 'https://data.example.org',
    } as unknown as SinkConfig;
    const ctx = { centreId: 'xx-test', sink, sources: new Map(), volumes: new VolumeArchives(landing) };
    const wnm = await formatEvent(events[0]!, ctx);
    if (isUnsendable(wnm)) throw new Error(wnm.reason);
    expect(wnmProblems(wnm.body)).toEqual([]);
    const body = JSON.parse(wnm.body.toString()) as {
      properties: Record<string, unknown> & { volume: Record<string, unknown> };
      links: Array<Record<string, unknown>>;
    };
    expect(body.properties['data_id']).toBe('xx-test/s/volumes/RMA1_20261123T1200Z');
    expect(body.properties.volume).toMatchObject({
      key: 'RMA1_20261123T1200Z',
      complete: true,
      partial: false,
      moments: ['DBZH', 'VRAD', 'ZDR'],
    });
    expect(body.links.map((k) => [k['rel'], k['href']])).toEqual([
      ['canonical', 'https://data.example.org/_volumes/s/RMA1_20261123T1200Z/v1.tar'],
      ['describedby', 'https://data.example.org/_volumes/s/RMA1_20261123T1200Z/v1.json'],
    ]);
    const processed = await formatEvent(events[2]!, ctx);
    if (isUnsendable(processed)) throw new Error(processed.reason);
    expect(JSON.parse(processed.body.toString())).toMatchObject({
      type: 'org.poller.volume.processed',
      severity: 'info',
      data: { volume: { key: 'RMA1_20261123T1200Z', complete: true } },
    });
    expect(await l.pendingEvents('mq', 10)).toHaveLength(3);
  });

  it('a quiet volume is volume-partial; failures and quarantines name the plugin; a lost claim writes none', async () => {
    const { l, v } = await openAny();
    l.setOutbox([{ sink: 'mq', kinds: [...ALL_VOLUME_KINDS], sources: null }]);
    await land(l, 'RMA1_DBZH_20261123T1200Z.BUFR', T0);
    await land(l, 'RMA1_VRAD_20261123T1200Z.BUFR', T0);
    await stage(v, T0);
    const [closed] = await v.closeDue('s', RULES, T0 + 60_000);
    expect(closed?.state).toBe('partial');
    const [c] = await v.claimVolumes('s', 'A', T0 + 600_000, T0 + 60_000, 10);
    const fail = { plugin: 'p', ok: false, durationMs: 1, outputs: [], message: 'boom', nextRetryMs: T0 + 61_000 };
    expect(await v.finishVolumes([{ id: c!.id, outcomes: [fail] }], 'B', T0 + 60_001)).toEqual(['claim-lost']);
    expect(await v.finishVolumes([{ id: c!.id, outcomes: [fail] }], 'A', T0 + 60_001)).toEqual(['failed']);
    const [again] = await v.claimVolumes('s', 'A', T0 + 600_000, T0 + 61_000, 10);
    await v.finishVolumes(
      [{ id: again!.id, outcomes: [{ ...fail, quarantine: true, message: 'bad volume' }] }],
      'A',
      T0 + 61_001,
    );
    const events = await l.pendingEvents('mq', 10);
    expect(events.map((e) => [e.kind, e.fact.volume?.partial, e.fact.plugin, e.fact.message])).toEqual([
      ['volume-partial', true, undefined, undefined],
      ['volume-failed', true, 'p', 'boom'],
      ['volume-quarantined', true, 'p', 'bad volume'],
    ]);
  });

  it('writes no volume rows when no sink wants volume kinds', async () => {
    const { l, v } = await openAny();
    l.setOutbox([{ sink: 'mq', kinds: ['fetched', 'processed', 'output'], sources: null }]);
    for (const m of ['DBZH', 'VRAD', 'ZDR']) await land(l, `RMA1_${m}_20261123T1200Z.BUFR`, T0);
    await stage(v, T0);
    const [c] = await v.claimVolumes('s', 'A', T0 + 600_000, T0, 10);
    await v.finishVolumes(
      [{ id: c!.id, outcomes: [{ plugin: 'p', ok: true, durationMs: 1, outputs: [output] }] }],
      'A',
      T0,
    );
    expect(await volumeEvents(l)).toEqual([]);
    // A sink of another source does not get them either.
    l.setOutbox([{ sink: 'mq', kinds: [...ALL_VOLUME_KINDS], sources: ['elsewhere'] }]);
    await land(l, 'RMA2_DBZH_20261123T1200Z.BUFR', T0 + 1);
    await land(l, 'RMA2_VRAD_20261123T1200Z.BUFR', T0 + 1);
    await land(l, 'RMA2_ZDR_20261123T1200Z.BUFR', T0 + 1);
    expect((await stage(v, T0 + 1))[0]?.state).toBe('complete');
    expect(await volumeEvents(l)).toEqual([]);
  });
});

describe('sqlite volume ledger outbox', () => {
  it('the event row is written in the transition transaction: when it cannot be written, the volume stays as it was', async () => {
    const { l, v, file } = open();
    l.setOutbox([{ sink: 'mq', kinds: [...ALL_VOLUME_KINDS], sources: null }]);
    for (const m of ['DBZH', 'VRAD']) await land(l, `RMA1_${m}_20261123T1200Z.BUFR`, T0);
    expect((await stage(v, T0))[0]?.state).toBe('collecting');
    // Another connection makes the outbox refuse volume rows (as a full disk would).
    const other = new Database(file);
    other.exec(`CREATE TRIGGER no_volume_events BEFORE INSERT ON events WHEN NEW.kind LIKE 'volume-%'
                BEGIN SELECT RAISE(ABORT, 'outbox refused'); END`);
    await land(l, 'RMA1_ZDR_20261123T1200Z.BUFR', T0 + 1);
    await expect(stage(v, T0 + 1)).rejects.toThrow(/outbox refused/);
    const [still] = await v.volumes({ key: 'RMA1_20261123T1200Z' });
    expect(still?.state).toBe('collecting');
    expect(still?.members.map((m) => m.member)).toEqual(['DBZH', 'VRAD']);
    // The outbox takes rows again: the same batch completes the volume with its event.
    other.exec('DROP TRIGGER no_volume_events');
    other.close();
    expect((await stage(v, T0 + 2))[0]?.state).toBe('complete');
    expect(volumeEventRows(file).map((r) => r.kind)).toEqual(['volume-complete']);
    await l.close();
  });
});
