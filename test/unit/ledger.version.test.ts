import { describe, expect, it } from 'vitest';
import { isSameVersion } from '../../src/ledger/version.js';

const MIN = 60_000;
const DAY = 86_400_000;
const midnight = Date.UTC(2025, 10, 22);

describe('version comparison across listing precisions', () => {
  it('a LIST that switches "Nov 22 05:16" to "Nov 22 2025" keeps the version', () => {
    const recent = { sizeBytes: 10, mtimeMs: midnight + 5 * 3_600_000 + 16 * MIN, mtimePrecision: 'minute' as const };
    const old = { sizeBytes: 10, mtimeMs: midnight, mtimePrecision: 'day' as const };
    expect(isSameVersion(recent, old)).toBe(true);
    expect(isSameVersion(old, recent)).toBe(true);
  });
  it('a different size or a time outside the coarse unit is a new version', () => {
    const old = { sizeBytes: 10, mtimeMs: midnight, mtimePrecision: 'day' as const };
    expect(isSameVersion({ ...old, sizeBytes: 11 }, old)).toBe(false);
    expect(isSameVersion({ sizeBytes: 10, mtimeMs: midnight + DAY + MIN, mtimePrecision: 'minute' }, old)).toBe(false);
  });
  it('MLSD seconds against a LIST minute', () => {
    const list = { sizeBytes: 5, mtimeMs: midnight + 7 * MIN, mtimePrecision: 'minute' as const };
    expect(isSameVersion({ sizeBytes: 5, mtimeMs: midnight + 7 * MIN + 42_000, mtimePrecision: 's' }, list)).toBe(true);
    expect(isSameVersion({ sizeBytes: 5, mtimeMs: midnight + 8 * MIN + 1000, mtimePrecision: 's' }, list)).toBe(false);
  });
  it('equal precisions compare within the unit', () => {
    expect(
      isSameVersion(
        { sizeBytes: 1, mtimeMs: 1500, mtimePrecision: 's' },
        { sizeBytes: 1, mtimeMs: 1000, mtimePrecision: 's' },
      ),
    ).toBe(true);
    expect(
      isSameVersion(
        { sizeBytes: 1, mtimeMs: 1500, mtimePrecision: 'ms' },
        { sizeBytes: 1, mtimeMs: 1000, mtimePrecision: 'ms' },
      ),
    ).toBe(false);
  });
  it('a strong ETag on both sides decides, whatever the mtimes; without one on either side, size and mtime do', () => {
    const a = { sizeBytes: 7, mtimeMs: midnight + 5_000, mtimePrecision: 's' as const, etag: '"5f-7"' };
    expect(isSameVersion(a, { ...a, etag: '"60-7"' })).toBe(false);
    expect(isSameVersion(a, { ...a, mtimeMs: midnight + 9_000 })).toBe(true);
    expect(isSameVersion(a, { ...a, sizeBytes: 8 })).toBe(false);
    expect(isSameVersion(a, { ...a, etag: undefined })).toBe(true);
    expect(isSameVersion(a, { ...a, etag: '', mtimeMs: midnight + 9_000 })).toBe(false);
  });
});
