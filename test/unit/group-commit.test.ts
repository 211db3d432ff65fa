import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/engine/group-commit.js';

describe('GroupCommit', () => {
  it('coalesces items added together into one write and gives each caller its own result', async () => {
    const batches: number[][] = [];
    const g = new GroupCommit<number, number>(
      async (items) => {
        batches.push(items);
        return items.map((i) => i * 10);
      },
      { maxDelayMs: 50, maxItems: 100 },
    );
    const results = await Promise.all([1, 2, 3].map((i) => g.add(i)));
    expect(results).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('writes at maxItems without waiting, and a flush writes what is queued', async () => {
    const batches: number[][] = [];
    const g = new GroupCommit<number, number>(
      async (items) => {
        batches.push(items);
        return items;
      },
      { maxDelayMs: 60_000, maxItems: 2 },
    );
    const a = Promise.all([g.add(1), g.add(2)]);
    await a;
    const c = g.add(3);
    g.flush();
    expect(await c).toBe(3);
    expect(batches).toEqual([[1, 2], [3]]);
  });

  it('a failed write fails every item of its batch, and the next batch is written anew', async () => {
    let calls = 0;
    const g = new GroupCommit<number, number>(
      async (items) => {
        calls++;
        if (calls === 1) throw new Error('disk I/O error');
        return items;
      },
      { maxDelayMs: 1, maxItems: 10 },
    );
    const first = await Promise.allSettled([g.add(1), g.add(2)]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await g.add(3)).toBe(3);
  });
});
