import { describe, expect, it } from 'vitest';
import { type PoolMember, SessionPool } from '../../src/sources/sftp/session-pool.js';

class FakeConnection implements PoolMember {
  alive = true;
  destroyed = false;
  readonly #deathListeners: (() => void)[] = [];
  isAlive(): boolean {
    return this.alive;
  }
  destroy(): void {
    this.destroyed = true;
    this.alive = false;
  }
  onDeath(listener: () => void): void {
    this.#deathListeners.push(listener);
  }
  die(): void {
    this.alive = false;
    for (const l of this.#deathListeners) l();
  }
}

function pool(max: number, openFails?: () => Error | undefined) {
  const opened: FakeConnection[] = [];
  const p = new SessionPool<FakeConnection>({
    max,
    idleCloseMs: 60_000,
    open: async () => {
      const err = openFails?.();
      if (err) throw err;
      const c = new FakeConnection();
      opened.push(c);
      return c;
    },
  });
  return { p, opened };
}

const signal = () => new AbortController().signal;

describe('session pool', () => {
  it('reuses idle members and never exceeds max', async () => {
    const { p, opened } = pool(2);
    const a = await p.acquire(signal());
    const b = await p.acquire(signal());
    let third: FakeConnection | undefined;
    const waiting = p.acquire(signal()).then((c) => (third = c));
    await Promise.resolve();
    expect(third).toBeUndefined();
    p.release(a);
    await waiting;
    expect(third).toBe(a);
    expect(opened).toHaveLength(2);
    p.release(b);
    p.release(a);
    expect(await p.acquire(signal())).toBe(a);
    p.close();
  });

  it('replaces a member that died while busy or idle', async () => {
    const { p, opened } = pool(1);
    const a = await p.acquire(signal());
    a.die();
    p.release(a);
    const b = await p.acquire(signal());
    expect(b).not.toBe(a);
    p.release(b);
    b.die();
    const c = await p.acquire(signal());
    expect(c).not.toBe(b);
    expect(opened).toHaveLength(3);
    p.close();
  });

  it('gives the freed slot of a dead member to a waiter', async () => {
    const { p } = pool(1);
    const a = await p.acquire(signal());
    const waiting = p.acquire(signal());
    a.die();
    p.release(a);
    const b = await waiting;
    expect(b).not.toBe(a);
    expect(b.isAlive()).toBe(true);
    p.close();
  });

  it('rejects a waiter whose signal aborts, with the reason', async () => {
    const { p } = pool(1);
    await p.acquire(signal());
    const controller = new AbortController();
    const waiting = p.acquire(controller.signal);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    p.close();
  });

  it('passes open errors to the caller and frees the slot', async () => {
    let fail = true;
    const boom = new Error('login rejected');
    const { p } = pool(1, () => (fail ? boom : undefined));
    await expect(p.acquire(signal())).rejects.toBe(boom);
    fail = false;
    const a = await p.acquire(signal());
    expect(a.isAlive()).toBe(true);
    p.close();
  });

  it('close destroys every member and rejects waiters', async () => {
    const { p, opened } = pool(1);
    await p.acquire(signal());
    const waiting = p.acquire(signal());
    p.close();
    await expect(waiting).rejects.toThrow('pool closed');
    expect(opened.every((c) => c.destroyed)).toBe(true);
    p.close();
  });
});
