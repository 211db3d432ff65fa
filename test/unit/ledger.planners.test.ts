/**
 * The pure planners of `src/ledger/core/`, tested directly: every backend only executes what
 * they decide, so these are the decisions of both. The state guards are checked against their
 * own SQL fragments, evaluated by SQLite over every combination of state, stage and time.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { isStaleClaim, staleClaims } from '../../src/ledger/core/crash.js';
import {
  fetchDueSql,
  isFetchDue,
  isProcessDue,
  isPrunable,
  processDueSql,
  prunableSql,
} from '../../src/ledger/core/guards.js';
import { dirsOf, PruneBudget } from '../../src/ledger/core/prune.js';
import { planRetry, runsToRetry } from '../../src/ledger/core/retry.js';
import { classifySighting, ListingPlan, UNSAFE_PATH_CODE } from '../../src/ledger/core/sighting.js';
import { processingVerdict, runEndValues, volumeVerdict } from '../../src/ledger/core/verdict.js';
import { FILE_STATES, type Observation, type PluginOutcome, type PluginRunState } from '../../src/ledger/ledger.js';
import type { LatestRow } from '../../src/ledger/rows.js';

const NOW = 1_000_000;

function obs(p: string, sizeBytes: number, mtimeMs: number, rejectReason?: string): Observation {
  return {
    entry: { path: p, name: p, type: 'file', sizeBytes, mtimeMs, mtimePrecision: 's' },
    ...(rejectReason !== undefined && { rejectReason }),
  };
}

function row(over: Partial<LatestRow>): LatestRow {
  return {
    id: 7,
    size_bytes: 10,
    mtime_ms: 1000,
    mtime_precision: 's',
    state: 'seen',
    stage: null,
    sightings: 1,
    next_retry_ms: null,
    etag: '',
    ...over,
  };
}

const rules = { nowMs: NOW, minAgeMs: 0, stableListings: 2, oldEnoughMs: 600_000 };

describe('sighting planner', () => {
  it('classifies each sighting by the latest row of its path', () => {
    expect(classifySighting(obs('a', 10, 1000), undefined, NOW)).toEqual({ kind: 'insert', isNew: true });
    expect(classifySighting(obs('a', 10, 1000, 'bad'), undefined, NOW)).toEqual({ kind: 'insert-rejected' });
    expect(classifySighting(obs('a', 10, 1000, 'bad'), row({ state: 'rejected' }), NOW)).toEqual({ kind: 'rejected' });
    expect(classifySighting(obs('a', 11, 1000), row({}), NOW)).toEqual({ kind: 'regrow' });
    expect(classifySighting(obs('a', 11, 1000), row({ state: 'processed' }), NOW)).toEqual({
      kind: 'insert',
      isNew: false,
    });
    expect(classifySighting(obs('a', 10, 1000), row({}), NOW)).toEqual({ kind: 'sighted' });
    expect(classifySighting(obs('a', 10, 1000), row({ state: 'processed' }), NOW)).toEqual({
      kind: 'unchanged',
      quiet: true,
      due: false,
    });
    const failed = row({ state: 'failed', stage: 'fetch', next_retry_ms: NOW });
    expect(classifySighting(obs('a', 10, 1000), failed, NOW)).toEqual({ kind: 'unchanged', quiet: false, due: true });
    expect(classifySighting(obs('a', 10, 1000), failed, NOW - 1)).toMatchObject({ due: false });
    expect(classifySighting(obs('a', 10, 1000), row({ state: 'failed', stage: 'process' }), NOW)).toMatchObject({
      quiet: true,
      due: false,
    });
  });

  it('plans the writes and counts of a directory, and keeps its digest only when all was quiet', () => {
    const plan = new ListingPlan(6, rules);
    plan.openDir();
    const young = plan.sight(obs('new', 10, NOW - 1000), undefined);
    expect(young).toEqual({ write: 'insert', state: 'seen', code: null, error: null, ready: false });
    const old = plan.sight(obs('old', 10, NOW - 3_600_000), undefined);
    expect(old).toMatchObject({ write: 'insert', ready: true });
    const bad = plan.sight(obs('bad\nname', 1, 1, 'unsafe\n  name'), undefined);
    expect(bad).toEqual({
      write: 'insert',
      state: 'rejected',
      code: UNSAFE_PATH_CODE,
      error: 'unsafe name',
      ready: false,
    });
    expect(plan.sight(obs('grow', 20, NOW - 500), row({ id: 3 }))).toEqual({ write: 'regrow', id: 3, ready: false });
    expect(plan.sight(obs('same', 10, 1000), row({ id: 4, sightings: 1 }))).toEqual({
      write: 'sighted',
      id: 4,
      ready: true,
    });
    plan.quietHit();
    // The old file met an identical row written meanwhile: it settles instead.
    plan.notInserted();
    expect(plan.counts).toEqual({ listed: 6, new: 3, changed: 1, unchanged: 1, settling: 3, rejected: 1 });
    expect(plan.closeDir(true)).toEqual({ put: false, drop: true });
    expect(plan.closeDir(false)).toEqual({ put: false, drop: false });
  });

  it('a directory of quiet rows keeps its digest; a matching digest answers for it', () => {
    const plan = new ListingPlan(5, rules);
    plan.openDir();
    expect(plan.sight(obs('a', 10, 1000), row({ state: 'processed' }))).toMatchObject({ write: null, quiet: true });
    expect(plan.sight(obs('r', 10, 1000, 'bad'), row({ state: 'rejected' }))).toMatchObject({
      write: null,
      ready: false,
    });
    expect(plan.closeDir(false)).toEqual({ put: true, rejected: 1 });
    expect(plan.answeredByDigest(3, 'd1', { digest: 'd1', rejected: 1 })).toBe(true);
    expect(plan.answeredByDigest(3, 'd2', { digest: 'd1', rejected: 1 })).toBe(false);
    expect(plan.answeredByDigest(3, 'd2', undefined)).toBe(false);
    expect(plan.counts).toMatchObject({ unchanged: 3, rejected: 2 });
  });
});

describe('verdict planner', () => {
  const ok: PluginOutcome = { plugin: 'a', ok: true, durationMs: 1.6, outputs: [] };
  const fail: PluginOutcome = {
    plugin: 'b',
    ok: false,
    errorCode: 'X',
    message: 'boom',
    durationMs: 2,
    outputs: [],
    nextRetryMs: NOW + 50,
  };
  const run = (plugin: string, state: 'succeeded' | 'failed' | 'quarantined', retry: number | null = null) => ({
    plugin,
    state,
    error_code: state === 'succeeded' ? null : 'E',
    last_error: state === 'succeeded' ? null : 'bad',
    next_retry_ms: retry,
  });

  it('a run end writes its state, error, retry and whether the attempt counts', () => {
    expect(runEndValues(ok, NOW)).toMatchObject({
      state: 'succeeded',
      code: null,
      retry: null,
      duration: 2,
      uncounted: 0,
    });
    expect(runEndValues({ ...fail, quarantine: true }, NOW)).toMatchObject({ state: 'quarantined', retry: null });
    expect(runEndValues({ ...fail, nextRetryMs: undefined, notCounted: true }, NOW)).toMatchObject({
      state: 'failed',
      code: 'X',
      retry: NOW,
      uncounted: 1,
    });
  });

  it('processed only when every run succeeded; failed while one can retry; quarantined otherwise', () => {
    expect(processingVerdict([ok], [run('a', 'succeeded')], NOW)).toEqual({
      state: 'processed',
      stage: null,
      code: null,
      error: null,
      retry: null,
      done: NOW,
    });
    expect(processingVerdict([ok, fail], [run('a', 'succeeded'), run('b', 'failed', NOW + 50)], NOW)).toEqual({
      state: 'failed',
      stage: 'process',
      code: 'X',
      error: 'b: boom',
      retry: NOW + 50,
      done: null,
    });
    // An earlier pass's failed run holds the file failed, due at that run's time.
    expect(processingVerdict([ok], [run('a', 'succeeded'), run('c', 'failed', NOW + 9)], NOW)).toMatchObject({
      state: 'failed',
      code: 'E',
      error: 'c: bad',
      retry: NOW + 9,
    });
    expect(processingVerdict([{ ...fail, quarantine: true }], [run('b', 'quarantined')], NOW)).toMatchObject({
      state: 'quarantined',
      retry: null,
      done: NOW,
    });
  });

  it('a volume version owes nothing to plugins removed from the config', () => {
    const runs = [run('kept', 'succeeded'), run('gone', 'failed', NOW + 5)];
    expect(volumeVerdict(runs, undefined, NOW).verdict).toMatchObject({
      state: 'failed',
      retry: NOW + 5,
      error: 'gone: bad',
    });
    const { verdict, counted } = volumeVerdict(runs, ['kept'], NOW);
    expect(verdict).toEqual({ state: 'processed', code: null, error: null, retry: null, done: NOW });
    expect(counted.map((r) => r.plugin)).toEqual(['kept']);
    expect(volumeVerdict([run('q', 'quarantined')], undefined, NOW).verdict.state).toBe('quarantined');
  });
});

describe('retry planner', () => {
  const runs = new Map<number, Array<{ plugin: string; state: PluginRunState }>>([
    [
      1,
      [
        { plugin: 'a', state: 'failed' as const },
        { plugin: 'b', state: 'quarantined' as const },
      ],
    ],
    [2, [{ plugin: 'a', state: 'succeeded' }]],
  ]);
  const rows = [
    { id: 1, state: 'failed' as const, stage: 'process' as const },
    { id: 2, state: 'failed' as const, stage: 'process' as const },
    { id: 3, state: 'quarantined' as const, stage: 'fetch' as const },
  ];
  const runsOf = (id: number) => runs.get(id) ?? [];

  it('a failed fetch is due as a whole; a plugin failure only through the runs the filter takes', () => {
    expect(planRetry(rows, runsOf, { includeQuarantined: false })).toEqual({
      fileIds: [1, 3],
      runs: [{ fileId: 1, plugin: 'a' }],
    });
    expect(planRetry(rows, runsOf, { includeQuarantined: true }).runs).toEqual([
      { fileId: 1, plugin: 'a' },
      { fileId: 1, plugin: 'b' },
    ]);
    // With a plugin: only files with that plugin's runs, never fetch failures.
    expect(planRetry(rows, runsOf, { plugin: 'b', includeQuarantined: true })).toEqual({
      fileIds: [1],
      runs: [{ fileId: 1, plugin: 'b' }],
    });
    expect(planRetry(rows, runsOf, { plugin: 'b', includeQuarantined: false })).toEqual({ fileIds: [], runs: [] });
    expect(runsToRetry(runs.get(2) ?? [], { includeQuarantined: true })).toEqual([]);
  });
});

describe('prune planner', () => {
  it('spends one budget over the windows; one row past it says more remain', () => {
    const b = new PruneBudget(3);
    expect(b.open()).toBe(true);
    expect(b.ask).toBe(4);
    expect(b.take([1, 2])).toEqual([1, 2]);
    expect(b.more).toBe(false);
    expect(b.ask).toBe(2);
    expect(b.take([3, 4])).toEqual([3]);
    expect(b.more).toBe(true);
    const spent = new PruneBudget(1);
    spent.take([1]);
    expect(spent.more).toBe(false);
    expect(spent.open()).toBe(false);
    expect(spent.more).toBe(true);
    expect(new PruneBudget(Number.MAX_SAFE_INTEGER).ask).toBe(Number.MAX_SAFE_INTEGER);
    expect(dirsOf([{ path: 'a/x' }, { path: 'a/y' }, { path: 'z' }])).toEqual(['a', '']);
  });
});

describe('crash planner', () => {
  it('gives back claims whose lease ran out or whose owner is gone, by the state they hold', () => {
    const gone = (o: string) => o === 'dead';
    expect(isStaleClaim({ claimed_by: 'live', lease_until_ms: NOW + 1 }, NOW, gone)).toBe(false);
    expect(isStaleClaim({ claimed_by: 'live', lease_until_ms: NOW }, NOW, gone)).toBe(true);
    expect(isStaleClaim({ claimed_by: 'live', lease_until_ms: null }, NOW, gone)).toBe(true);
    expect(isStaleClaim({ claimed_by: 'dead', lease_until_ms: NOW + 1 }, NOW, gone)).toBe(true);
    const rows = [
      { id: 1, state: 'fetching' as const, claimed_by: 'dead', lease_until_ms: NOW + 1 },
      { id: 2, state: 'processing' as const, claimed_by: 'live', lease_until_ms: NOW - 1 },
      { id: 3, state: 'processing' as const, claimed_by: 'live', lease_until_ms: NOW + 1 },
    ];
    const s = staleClaims(rows, NOW, gone);
    expect(s.fetching.map((r) => r.id)).toEqual([1]);
    expect(s.processing.map((r) => r.id)).toEqual([2]);
  });
});

describe('state guards', () => {
  it('each predicate and its SQL fragment agree on every state, stage and time', () => {
    const db = new Database(':memory:');
    db.exec(
      'CREATE TABLE files (id INTEGER PRIMARY KEY, state TEXT, stage TEXT, next_retry_ms INTEGER, done_ms INTEGER)',
    );
    const insert = db.prepare('INSERT INTO files (state, stage, next_retry_ms, done_ms) VALUES (?, ?, ?, ?)');
    const rows: Array<{
      id: number;
      state: (typeof FILE_STATES)[number];
      stage: 'fetch' | 'process' | null;
      next_retry_ms: number | null;
      done_ms: number | null;
    }> = [];
    for (const state of FILE_STATES)
      for (const stage of [null, 'fetch', 'process'] as const)
        for (const t of [null, NOW - 1, NOW, NOW + 1]) {
          const id = Number(insert.run(state, stage, t, t).lastInsertRowid);
          rows.push({ id, state, stage, next_retry_ms: t, done_ms: t });
        }
    const ids = (where: string) =>
      db
        .prepare<[], { id: number }>(`SELECT id FROM files WHERE ${where} ORDER BY id`)
        .all()
        .map((r) => r.id);
    expect(ids(fetchDueSql(String(NOW)))).toEqual(rows.filter((r) => isFetchDue(r, NOW)).map((r) => r.id));
    expect(ids(processDueSql(String(NOW)))).toEqual(rows.filter((r) => isProcessDue(r, NOW)).map((r) => r.id));
    expect(ids(prunableSql(String(NOW)))).toEqual(rows.filter((r) => isPrunable(r, NOW)).map((r) => r.id));
    // Not vacuous: each guard takes some rows and leaves others.
    for (const pick of [isFetchDue, isProcessDue, isPrunable]) {
      const n = rows.filter((r) => pick(r, NOW)).length;
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThan(rows.length);
    }
    db.close();
  });
});
