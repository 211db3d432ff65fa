import { describe, expect, it } from 'vitest';
import { evaluateReadiness, type SourceHealthInput } from '../../src/observe/health.js';

const MINUTE = 60_000;
const START = Date.parse('2026-11-23T00:00:00Z');

function source(name: string, extra: Partial<SourceHealthInput> = {}): SourceHealthInput {
  return { name, enabled: true, intervalMs: MINUTE, ...extra };
}

describe('evaluateReadiness', () => {
  it('is ready with no sources', () => {
    expect(evaluateReadiness({ sources: [], nowMs: START, startedAtMs: START })).toEqual({ ready: true, unready: [] });
  });

  it('is ready when every enabled source succeeded within three intervals', () => {
    const r = evaluateReadiness({
      sources: [
        source('a', { lastSuccessAtMs: START + 7 * MINUTE }),
        source('b', { lastSuccessAtMs: START + 10 * MINUTE }),
      ],
      nowMs: START + 10 * MINUTE,
      startedAtMs: START,
    });
    expect(r.ready).toBe(true);
  });

  it('names a source whose last success is older than three intervals', () => {
    const r = evaluateReadiness({
      sources: [
        source('quiet', { lastSuccessAtMs: START + 6 * MINUTE }),
        source('fine', { lastSuccessAtMs: START + 9 * MINUTE }),
      ],
      nowMs: START + 10 * MINUTE,
      startedAtMs: START,
    });
    expect(r).toEqual({
      ready: false,
      unready: [{ source: 'quiet', reason: 'stale', lastSuccessAtMs: START + 6 * MINUTE, windowMs: 3 * MINUTE }],
    });
  });

  it('gives a source three intervals after start for its first success', () => {
    const early = evaluateReadiness({ sources: [source('new')], nowMs: START + 2 * MINUTE, startedAtMs: START });
    expect(early.ready).toBe(true);
    const late = evaluateReadiness({ sources: [source('new')], nowMs: START + 3 * MINUTE, startedAtMs: START });
    expect(late.unready).toEqual([{ source: 'new', reason: 'never_succeeded', windowMs: 3 * MINUTE }]);
  });

  it('gives a success from before a restart the same start-up window', () => {
    const r = evaluateReadiness({
      sources: [source('old', { lastSuccessAtMs: START - 60 * MINUTE })],
      nowMs: START + MINUTE,
      startedAtMs: START,
    });
    expect(r.ready).toBe(true);
  });

  it('ignores disabled sources', () => {
    const r = evaluateReadiness({
      sources: [source('off', { enabled: false })],
      nowMs: START + 100 * MINUTE,
      startedAtMs: START,
    });
    expect(r.ready).toBe(true);
  });

  it('uses each source its own interval and honours graceIntervals', () => {
    const r = evaluateReadiness({
      sources: [
        source('hourly', { intervalMs: 60 * MINUTE, lastSuccessAtMs: START + 50 * MINUTE }),
        source('minutely', { lastSuccessAtMs: START + 50 * MINUTE }),
      ],
      nowMs: START + 120 * MINUTE,
      startedAtMs: START,
      graceIntervals: 2,
    });
    expect(r.unready.map((u) => u.source)).toEqual(['minutely']);
  });
});
