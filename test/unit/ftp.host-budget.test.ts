import { describe, expect, it } from 'vitest';
import { createHostBudget } from '../../src/sources/ftp/host-budget.js';

const never = (): boolean => false;
const live = (): AbortSignal => new AbortController().signal;

describe('createHostBudget', () => {
  it('limits a host to the smallest maxConnections of the sources that joined it', async () => {
    const budget = createHostBudget();
    const a = budget.join('h:21', 3, never);
    const b = budget.join('h:21', 2, never);
    const r1 = await a.acquire(live());
    await b.acquire(live());
    let third = false;
    const pending = a.acquire(live()).then((release) => {
      third = true;
      return release;
    });
    await Promise.resolve();
    expect(third).toBe(false);
    expect(b.contended()).toBe(true);
    r1();
    r1(); // releasing twice gives back one slot only
    await pending;
    expect(third).toBe(true);
    expect(budget.inUse('h:21')).toBe(2);
    expect(budget.peakInUse('h:21')).toBe(2);
  });

  it('keeps hosts apart', async () => {
    const budget = createHostBudget();
    await budget.join('a:21', 1, never).acquire(live());
    await budget.join('b:21', 1, never).acquire(live());
    expect(budget.inUse('a:21')).toBe(1);
    expect(budget.inUse('b:21')).toBe(1);
  });

  it('asks members to close an idle connection before making a waiter wait', async () => {
    const budget = createHostBudget();
    let idle: (() => void) | undefined;
    const a = budget.join('h:21', 1, () => {
      if (!idle) return false;
      idle();
      idle = undefined;
      return true;
    });
    const b = budget.join('h:21', 1, never);
    idle = await a.acquire(live());
    const release = await b.acquire(live());
    expect(typeof release).toBe('function');
    expect(budget.inUse('h:21')).toBe(1);
  });

  it('an aborted waiter leaves the queue with the abort reason', async () => {
    const budget = createHostBudget();
    const a = budget.join('h:21', 1, never);
    const release = await a.acquire(live());
    const controller = new AbortController();
    const waiting = a.acquire(controller.signal);
    controller.abort(new Error('shutdown'));
    await expect(waiting).rejects.toThrow('shutdown');
    expect(a.contended()).toBe(false);
    release();
    expect(budget.inUse('h:21')).toBe(0);
  });

  it('throttling caps the host for a while', async () => {
    const budget = createHostBudget();
    const a = budget.join('h:21', 4, never);
    await a.acquire(live());
    a.throttle(1, Date.now() + 60_000);
    const controller = new AbortController();
    const waiting = a.acquire(controller.signal);
    await Promise.resolve();
    expect(a.contended()).toBe(true);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    a.throttle(1, Date.now() - 1);
    await a.acquire(live());
    expect(budget.inUse('h:21')).toBe(2);
  });
});
