import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type CycleOutcome,
  createScheduler,
  nominalIntervalMs,
  pauseBackoffMs,
  type ScheduledSource,
  type Scheduler,
} from '../../src/engine/scheduler.js';
import { createLogSink } from '../helpers/log-sink.js';
import { waitFor } from '../helpers/wait-for.js';

const stops: AbortController[] = [];
const schedulers: Scheduler<ScheduledSource>[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) s.abort();
  await Promise.all(schedulers.splice(0).map((s) => s.idle()));
});

function start(
  runCycle: (src: ScheduledSource) => Promise<CycleOutcome>,
  extra: {
    watch?: (src: ScheduledSource, onChange: () => void, signal: AbortSignal) => Promise<void> | undefined;
  } = {},
) {
  const stop = new AbortController();
  stops.push(stop);
  const sink = createLogSink('info');
  const scheduler = createScheduler<ScheduledSource>({
    runCycle,
    log: sink.log,
    signal: stop.signal,
    random: () => 0,
    ...extra,
  });
  schedulers.push(scheduler);
  return { scheduler, stop, sink };
}

describe('pauseBackoffMs', () => {
  it('waits 5 min doubling to 1 h for schedules of a minute and more', () => {
    expect([1, 2, 3, 4, 5, 9].map((n) => pauseBackoffMs(60_000, n))).toEqual([
      300_000, 600_000, 1_200_000, 2_400_000, 3_600_000, 3_600_000,
    ]);
    expect(pauseBackoffMs(7_200_000, 1)).toBe(7_200_000);
  });

  it('scales down for fast schedules, never below one interval', () => {
    expect([1, 2, 5].map((n) => pauseBackoffMs(200, n))).toEqual([1_000, 2_000, 12_000]);
  });
});

describe('nominalIntervalMs', () => {
  it('takes the interval, the cron gap, or a minute', () => {
    expect(nominalIntervalMs({ name: 'a', enabled: true, everyMs: 1500 })).toBe(1500);
    expect(nominalIntervalMs({ name: 'a', enabled: true, schedule: '*/2 * * * *' })).toBe(120_000);
    expect(nominalIntervalMs({ name: 'a', enabled: true })).toBe(60_000);
  });
});

describe('createScheduler', () => {
  it('never runs two cycles of one source at once, even when a cycle outlasts the interval', async () => {
    let running = 0;
    let most = 0;
    let cycles = 0;
    const { scheduler } = start(async () => {
      running++;
      most = Math.max(most, running);
      await delay(40);
      running--;
      cycles++;
      return { paused: false };
    });
    scheduler.update([{ name: 'fast', enabled: true, everyMs: 5 }]);
    await waitFor(() => cycles >= 4, { what: 'four cycles' });
    expect(most).toBe(1);
  });

  it('runs sources independently and skips disabled ones', async () => {
    const seen: string[] = [];
    const { scheduler } = start(async (src) => {
      seen.push(src.name);
      return { paused: false };
    });
    scheduler.update([
      { name: 'a', enabled: true, everyMs: 10 },
      { name: 'b', enabled: true, everyMs: 10 },
      { name: 'off', enabled: false, everyMs: 10 },
    ]);
    await waitFor(() => seen.filter((s) => s === 'a').length >= 2 && seen.filter((s) => s === 'b').length >= 2);
    expect(seen).not.toContain('off');
  });

  it('backs off a paused source on a doubling schedule and resumes when it works again', async () => {
    let calls = 0;
    const { scheduler, sink } = start(async () => {
      calls++;
      return { paused: calls <= 2 };
    });
    scheduler.update([{ name: 'bad-login', enabled: true, everyMs: 10 }]);
    await waitFor(() => sink.events('source.resumed').length === 1, { what: 'resumed' });
    expect(sink.events('source.backoff').map((l) => l['delayMs'])).toEqual([50, 100]);
  });

  it('stops a source removed by an update and ends every loop after the stop signal', async () => {
    const seen: string[] = [];
    const { scheduler, stop } = start(async (src) => {
      seen.push(src.name);
      return { paused: false };
    });
    scheduler.update([
      { name: 'keep', enabled: true, everyMs: 10 },
      { name: 'drop', enabled: true, everyMs: 10 },
    ]);
    await waitFor(() => seen.includes('drop'));
    scheduler.update([{ name: 'keep', enabled: true, everyMs: 10 }]);
    await delay(0);
    const dropped = seen.filter((s) => s === 'drop').length;
    const kept = seen.filter((s) => s === 'keep').length;
    await waitFor(() => seen.filter((s) => s === 'keep').length >= kept + 3, { what: 'keep goes on' });
    expect(seen.filter((s) => s === 'drop').length).toBe(dropped);
    stop.abort();
    await scheduler.idle();
    const total = seen.length;
    await delay(30);
    expect(seen.length).toBe(total);
  });

  it('a change notification starts an early cycle of a source on a slow schedule', async () => {
    let cycles = 0;
    let notify: (() => void) | undefined;
    const { scheduler } = start(
      async () => {
        cycles++;
        return { paused: false };
      },
      {
        watch(_src, onChange) {
          notify = onChange;
          return Promise.resolve();
        },
      },
    );
    scheduler.update([{ name: 'local', enabled: true, everyMs: 3_600_000 }]);
    await waitFor(() => cycles === 1, { what: 'the first cycle at start' });
    notify?.();
    await waitFor(() => cycles === 2, { what: 'a cycle after the change' });
  });

  it('a changed source takes its new settings without waiting out the old interval', async () => {
    let cycles = 0;
    const { scheduler } = start(async () => {
      cycles++;
      return { paused: false };
    });
    scheduler.update([{ name: 'r', enabled: true, everyMs: 3_600_000 }]);
    await waitFor(() => cycles === 1);
    scheduler.update([{ name: 'r', enabled: true, everyMs: 10 }]);
    await waitFor(() => cycles >= 3, { what: 'cycles on the new interval' });
  });
});
