import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../src/transfer/retry.js';
import { GlobFilter } from '../../src/util/glob.js';

describe('glob filter', () => {
  it('matches includes minus excludes', () => {
    const f = new GlobFilter(['radar/**/*.bufr', 'obs/*.bufr'], ['**/*.tmp', 'radar/test/**']);
    expect(f.matches('radar/A/2026/x.bufr')).toBe(true);
    expect(f.matches('obs/x.bufr')).toBe(true);
    expect(f.matches('obs/deep/x.bufr')).toBe(false);
    expect(f.matches('radar/A/x.bufr.tmp')).toBe(false);
    expect(f.matches('radar/test/x.bufr')).toBe(false);
  });
  it('descends only where a match is possible', () => {
    const f = new GlobFilter(['radar/*/2026/**/*.bufr'], ['radar/old']);
    expect(f.shouldDescend('radar')).toBe(true);
    expect(f.shouldDescend('radar/A')).toBe(true);
    expect(f.shouldDescend('radar/A/2026')).toBe(true);
    expect(f.shouldDescend('radar/A/2025')).toBe(false);
    expect(f.shouldDescend('obs')).toBe(false);
    expect(f.shouldDescend('radar/old')).toBe(false);
    expect(new GlobFilter(['*.bufr']).shouldDescend('sub')).toBe(false);
  });
});

describe('backoff', () => {
  it('doubles up to the cap, with jitter between half and the full delay', () => {
    const lo = { baseMs: 1000, maxMs: 60_000, random: () => 0 };
    const hi = { baseMs: 1000, maxMs: 60_000, random: () => 1 };
    expect(backoffDelayMs(1, lo)).toBe(500);
    expect(backoffDelayMs(1, hi)).toBe(1000);
    expect(backoffDelayMs(3, hi)).toBe(4000);
    expect(backoffDelayMs(30, hi)).toBe(60_000);
    expect(backoffDelayMs(1000, hi)).toBe(60_000);
  });
});
