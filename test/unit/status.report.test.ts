/**
 * The status document as a pure function: freshness against `expectEvery`, the state of a
 * source (paused beats failing beats late), the chart and last-hour figures from ledger slots,
 * and the page's renderer escaping whatever a remote name or an error message holds.
 */
import { describe, expect, it } from 'vitest';
import { freshness, isLate } from '../../src/status/freshness.js';
import { pageCsp, rendererSource, renderPage, renderStatusBody } from '../../src/status/page.js';
import { buildStatusReport, CHART_SLOTS, type StatusInput } from '../../src/status/report.js';

const NOW = Date.parse('2026-11-23T06:00:00Z');
const MIN = 60_000;

describe('freshness', () => {
  const at = (ageMs: number | null, expectEveryMs: number | undefined = 5 * MIN, upMs = 60 * MIN) =>
    freshness({
      expectEveryMs,
      newestMtimeMs: ageMs === null ? null : NOW - ageMs,
      nowMs: NOW,
      startedAtMs: NOW - upMs,
    });

  it('is ok within the cadence, late past it, missing past three cadences', () => {
    expect(at(4 * MIN)).toBe('ok');
    expect(at(5 * MIN)).toBe('ok');
    expect(at(5 * MIN + 1)).toBe('late');
    expect(at(15 * MIN)).toBe('late');
    expect(at(15 * MIN + 1)).toBe('missing');
    expect([at(4 * MIN), at(6 * MIN), at(20 * MIN)].map(isLate)).toEqual([false, true, true]);
  });

  it('gives a source with no file one cadence after the start, and is unknown without expectEvery', () => {
    expect(at(null, 5 * MIN, 2 * MIN)).toBe('ok');
    expect(at(null, 5 * MIN, 6 * MIN)).toBe('missing');
    expect(
      freshness({ expectEveryMs: undefined, newestMtimeMs: NOW - 3_600_000, nowMs: NOW, startedAtMs: NOW - 1 }),
    ).toBe('unknown');
    expect(isLate('unknown')).toBe(false);
  });
});

function input(over: Partial<StatusInput> = {}): StatusInput {
  return {
    nowMs: NOW,
    startedAtMs: NOW - 3_600_000,
    sources: [
      { name: 'north', displayUrl: 'ftp://north.example.org/out', enabled: true, expectEveryMs: 5 * MIN },
      { name: 'south', displayUrl: 'ftp://south.example.org/out', enabled: true, expectEveryMs: 5 * MIN },
      { name: 'east', displayUrl: 'sftp://east.example.org/', enabled: false },
      { name: 'west', displayUrl: 'ftp://west.example.org/', enabled: true },
    ],
    ledger: [
      row('north', { newestFetchedMtimeMs: NOW - 2 * MIN, counts: { processed: 10, failed: 1, seen: 0 } }),
      row('south', { newestFetchedMtimeMs: NOW - 9 * MIN }),
      row('west', { lastError: 'connect ECONNREFUSED 10.0.0.9:21' }),
      row('gone', {}),
    ],
    paused: new Map(),
    activity: [
      { source: 'north', slot: 0, files: 3, bytes: 3000 },
      { source: 'north', slot: 11, files: 2, bytes: 500 },
      { source: 'north', slot: 12, files: 7, bytes: 9999 },
      { source: 'north', slot: 287, files: 1, bytes: 1 },
      { source: 'south', slot: 5, files: 1, bytes: 10 },
    ],
    failures: [],
    ...over,
  };
}

function row(name: string, over: Record<string, unknown>) {
  return {
    name,
    displayUrl: `ftp://${name}.example.org/`,
    lastPollMs: NOW - 10_000,
    lastSuccessMs: NOW - 10_000,
    lastError: null,
    counts: {},
    newestFetchedMtimeMs: null,
    ...over,
  };
}

describe('buildStatusReport', () => {
  it('gives each source its state: ok, late, paused (with the reason), failing', () => {
    const r = buildStatusReport(input({ paused: new Map([['south', 'login rejected (530)']]) }));
    const by = Object.fromEntries(r.sources.map((s) => [s.name, s]));
    expect(r.sources.map((s) => s.name)).toEqual(['north', 'south', 'east', 'west', 'gone']);
    expect(by['north']).toMatchObject({ state: 'ok', freshness: 'ok', newestFileAgeMs: 2 * MIN });
    // Paused beats late: south is both.
    expect(by['south']).toMatchObject({ state: 'paused', freshness: 'late', pausedReason: 'login rejected (530)' });
    expect(by['east']).toMatchObject({ state: 'paused', pausedReason: 'disabled in the config', freshness: 'unknown' });
    expect(by['west']).toMatchObject({ state: 'failing', lastError: 'connect ECONNREFUSED 10.0.0.9:21' });
    expect(by['gone']).toMatchObject({ state: 'paused', configured: false, pausedReason: 'not in the config' });
    expect(buildStatusReport(input()).sources[1]).toMatchObject({ name: 'south', state: 'late' });
  });

  it('lists files removed upstream, newest first, with when; the page shows them escaped', () => {
    const r = buildStatusReport(
      input({
        gone: [
          { source: 'north', path: 'old/<a>.bufr', goneMs: NOW - 3 * MIN },
          { source: 'north', path: 'new.bufr', goneMs: NOW - MIN },
        ],
      }),
    );
    expect(r.gone?.map((g) => g.path)).toEqual(['new.bufr', 'old/<a>.bufr']);
    const html = renderStatusBody(r);
    expect(html).toContain('Removed upstream');
    expect(html).toContain('old/&lt;a&gt;.bufr');
    expect(buildStatusReport(input()).gone).toBeUndefined();
  });

  it('fills the 24 h chart oldest first and sums the last hour from the newest twelve slots', () => {
    const north = buildStatusReport(input()).sources[0]!;
    expect(north.chart.files).toHaveLength(CHART_SLOTS);
    expect(north.chart.files[CHART_SLOTS - 1]).toBe(3);
    expect(north.chart.files[CHART_SLOTS - 12]).toBe(2);
    expect(north.chart.files[CHART_SLOTS - 13]).toBe(7);
    expect(north.chart.files[0]).toBe(1);
    expect(north.lastHour).toEqual({ files: 5, bytes: 3500 });
    // States with no rows are left out of the counts.
    expect(north.files).toEqual({ processed: 10, failed: 1 });
  });

  it('lists failures newest first, at most twenty', () => {
    const failures = Array.from({ length: 25 }, (_, i) => ({
      source: 'north',
      path: `a/${i}.bufr`,
      state: 'failed' as const,
      stage: 'process' as const,
      plugin: 'bufr',
      errorCode: 'BUFR_TRUNCATED',
      message: 'truncated',
      attempts: 1,
      nextRetryMs: NOW + MIN,
      updatedMs: NOW - i * 1000,
    }));
    const r = buildStatusReport(input({ failures: [...failures].reverse() }));
    expect(r.failures).toHaveLength(20);
    expect(r.failures[0]?.path).toBe('a/0.bufr');
  });
});

describe('the page renderer', () => {
  it('escapes names, paths and messages', () => {
    const r = buildStatusReport(
      input({
        failures: [
          {
            source: 'north',
            path: 'x/<img src=x onerror=alert(1)>.bufr',
            state: 'quarantined',
            stage: 'process',
            plugin: 'p"lug',
            errorCode: 'E',
            message: '</script><b>bold</b>',
            attempts: 5,
            nextRetryMs: null,
            updatedMs: NOW,
          },
        ],
      }),
    );
    const html = renderStatusBody(r);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>bold');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('p&quot;lug');
  });

  it('allows only its own nonced script and style, and runs a renderer with no outside reference', () => {
    const r = buildStatusReport(input());
    const html = renderPage(r, { nonce: 'n0nce', refreshMs: 5000 });
    expect(pageCsp('n0nce')).toContain("script-src 'nonce-n0nce'");
    expect(pageCsp('n0nce')).toMatch(/^default-src 'none'/);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain('<script nonce="n0nce">');
    expect(html).not.toMatch(/\s(href|src)="(https?:)?\/\//);
    // The renderer's own source, evaluated alone, draws what the server drew.
    const fresh = new Function(`return (${rendererSource()});`)() as (report: typeof r) => string;
    expect(fresh(r)).toBe(renderStatusBody(r));
  });
});
