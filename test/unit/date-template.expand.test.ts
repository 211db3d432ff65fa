import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../src/errors.js';
import {
  expandDateTemplate,
  formatDateTemplate,
  MAX_TEMPLATE_DIRS,
  splitDateTemplate,
  startDirsFor,
} from '../../src/sources/date-template.js';
import { GlobFilter } from '../../src/util/glob.js';

const t = (iso: string) => Date.parse(iso);

describe('formatDateTemplate', () => {
  it('fills every token in UTC, zero-padded', () => {
    expect(formatDateTemplate('r/{YYYY}/{MM}/{DD}/{HH}/{JJJ}', t('2026-02-03T04:59:59Z'))).toBe('r/2026/02/03/04/034');
  });

  it('counts the day of year across a leap year end', () => {
    expect(formatDateTemplate('{YYYY}{JJJ}', t('2028-12-31T23:00Z'))).toBe('2028366');
    expect(formatDateTemplate('{YYYY}{JJJ}', t('2026-12-31T23:00Z'))).toBe('2026365');
    expect(formatDateTemplate('{YYYY}{JJJ}', t('2027-01-01T00:00Z'))).toBe('2027001');
  });
});

describe('expandDateTemplate', () => {
  it('lists the days of a window across a month boundary', () => {
    expect(
      expandDateTemplate('radar/{YYYY}/{MM}/{DD}', {
        sinceMs: t('2026-10-30T12:00Z'),
        untilMs: t('2026-11-02T00:00Z'),
      }),
    ).toEqual(['radar/2026/10/30', 'radar/2026/10/31', 'radar/2026/11/01']);
  });

  it('lists the days of a window across a year boundary, and an end inside a day includes that day', () => {
    expect(
      expandDateTemplate('{YYYY}/{MM}/{DD}', { sinceMs: t('2026-12-31T23:00Z'), untilMs: t('2027-01-01T00:01Z') }),
    ).toEqual(['2026/12/31', '2027/01/01']);
  });

  it('lists hours across midnight', () => {
    expect(
      expandDateTemplate('{YYYY}{MM}{DD}/{HH}', { sinceMs: t('2026-11-01T22:30Z'), untilMs: t('2026-11-02T01:00Z') }),
    ).toEqual(['20261101/22', '20261101/23', '20261102/00']);
  });

  it('lists months and years once each', () => {
    expect(
      expandDateTemplate('{YYYY}/{MM}', { sinceMs: t('2026-11-15T00:00Z'), untilMs: t('2027-02-01T00:00Z') }),
    ).toEqual(['2026/11', '2026/12', '2027/01']);
    expect(expandDateTemplate('y{YYYY}', { sinceMs: t('2025-06-01T00:00Z'), untilMs: t('2026-01-01T00:00Z') })).toEqual(
      ['y2025'],
    );
  });

  it('uses day-of-year directories', () => {
    expect(
      expandDateTemplate('{YYYY}/{JJJ}', { sinceMs: t('2026-12-31T00:00Z'), untilMs: t('2027-01-02T00:00Z') }),
    ).toEqual(['2026/365', '2027/001']);
  });

  it('returns nothing for an empty window and the template itself when it has no token', () => {
    expect(expandDateTemplate('{YYYY}', { sinceMs: 10, untilMs: 10 })).toEqual([]);
    expect(expandDateTemplate('static', { sinceMs: 0, untilMs: 10 })).toEqual(['static']);
  });

  it('refuses a window that needs more directories than the cap', () => {
    const window = { sinceMs: t('2020-01-01T00:00Z'), untilMs: t('2026-01-01T00:00Z') };
    expect(() => expandDateTemplate('{YYYY}/{MM}/{DD}/{HH}', window)).toThrow(PermanentError);
    expect(() => expandDateTemplate('{YYYY}/{MM}/{DD}/{HH}', window)).toThrow(/more than 10000 directories/);
    expect(expandDateTemplate('{YYYY}/{MM}/{DD}', window)).toHaveLength(2192);
    expect(MAX_TEMPLATE_DIRS).toBe(10_000);
  });
});

describe('splitDateTemplate', () => {
  it('moves a dated root path into the include globs', () => {
    const s = splitDateTemplate('/data/{YYYY}/{MM}{DD}', ['*.bufr']);
    expect(s.rootPath).toBe('/data');
    expect(s.dirTemplates).toEqual(['{YYYY}/{MM}{DD}']);
    const filter = new GlobFilter(s.include);
    expect(filter.matches('2026/1123/a.bufr')).toBe(true);
    expect(filter.matches('2026/1123/a.txt')).toBe(false);
    expect(filter.shouldDescend('2026')).toBe(true);
    expect(filter.shouldDescend('latest')).toBe(false);
  });

  it('takes dir templates from include globs and keeps the root', () => {
    const s = splitDateTemplate('/', ['radar/{YYYY}/{MM}/{DD}/*.h5', 'radar/{YYYY}/{MM}/{DD}/*.bufr']);
    expect(s).toMatchObject({ rootPath: '/', dirTemplates: ['radar/{YYYY}/{MM}/{DD}'] });
    expect(new GlobFilter(s.include).matches('radar/2026/11/23/x.bufr')).toBe(true);
  });

  it('walks the whole tree when one include glob has no template', () => {
    const s = splitDateTemplate('/in', ['{YYYY}/*.bufr', 'latest/*.bufr']);
    expect(s.dirTemplates).toBeUndefined();
    expect(splitDateTemplate('/in', ['**/*.bufr'])).toEqual({ rootPath: '/in', include: ['**/*.bufr'] });
  });

  it('expands start dirs of several templates as one set', () => {
    const window = { sinceMs: t('2026-11-01T23:00Z'), untilMs: t('2026-11-02T01:00Z') };
    expect(startDirsFor(['a/{YYYY}{MM}{DD}', 'b/{YYYY}/{JJJ}'], window)).toEqual([
      'a/20261101',
      'a/20261102',
      'b/2026/305',
      'b/2026/306',
    ]);
  });
});
