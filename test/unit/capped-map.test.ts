import { describe, expect, it } from 'vitest';
import { CappedMap } from '../../src/sources/capped-map.js';

describe('CappedMap', () => {
  it('keeps at most max entries, forgetting the least recently set', () => {
    const m = new CappedMap<string, number>(3);
    for (let i = 0; i < 10; i++) m.set(`f${i}`, i);
    expect([...m.keys()]).toEqual(['f7', 'f8', 'f9']);
    // Setting again makes an entry the newest: f7 survives the next insert, f8 does not.
    m.set('f7', 70);
    m.set('f10', 10);
    expect([...m.entries()]).toEqual([
      ['f9', 9],
      ['f7', 70],
      ['f10', 10],
    ]);
    expect(m.get('f8')).toBeUndefined();
  });

  it('stays bounded over a long feed of distinct paths', () => {
    const m = new CappedMap<string, string>(1000);
    for (let i = 0; i < 200_000; i++) m.set(`radar/${i}.bufr`, 'etag');
    expect(m.size).toBe(1000);
    expect(m.has('radar/199999.bufr')).toBe(true);
  });
});
