import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, type JournalEntry } from '../../src/sources/wis2/journal.js';
import { Wis2State } from '../../src/sources/wis2/state.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';

const HOUR = 3_600_000;
const entry = (i: number, at: number): JournalEntry => ({
  t: 'n',
  at,
  id: `id-${i}`,
  path: `c/f${i}.bufr`,
  href: `http://127.0.0.1/f${i}.bufr`,
  mtimeMs: at,
});

describe('WIS2 journal', () => {
  let tmp: TmpDir;
  let file: string;
  beforeEach(async () => {
    tmp = await makeTmpDir('poller-journal-');
    file = path.join(tmp.path, 'wis2', 'src.jsonl');
  });
  afterEach(() => tmp.remove());

  it('gives back what was appended, drops lines past the keep window and a line torn by a crash', async () => {
    const now = Date.now();
    const { journal, lines } = Journal.open(file, 24 * HOUR, now);
    expect(lines).toEqual([]);
    await journal.append(entry(1, now - 30 * HOUR));
    await journal.append(entry(2, now - HOUR));
    await journal.append({ t: 'd', at: now, path: 'c/f2.bufr', mtimeMs: now - HOUR });
    await journal.append(entry(3, now));
    await journal.close();
    appendFileSync(file, '{"t":"n","at":1,"id":"torn');
    const again = Journal.open(file, 24 * HOUR, now);
    expect(again.lines.map((l) => (l.t === 'n' ? l.id : `done ${l.path}`))).toEqual(['id-2', 'done c/f2.bufr', 'id-3']);
    // Opening compacted the file: the expired and the torn lines are gone from disk too.
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(3);
    await again.journal.close();
  });

  it('compacts once the file has doubled, keeping every line of the window', async () => {
    const now = Date.now();
    const { journal } = Journal.open(file, HOUR, now);
    for (let i = 0; i < 600; i++) await journal.append(entry(i, now - 2 * HOUR));
    for (let i = 600; i < 1200; i++) await journal.append(entry(i, now));
    await journal.maybeCompact(now);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(600);
    // Appends go on into the compacted file.
    await journal.append(entry(5000, now));
    await journal.close();
    const reopened = Journal.open(file, HOUR, now);
    expect(reopened.lines).toHaveLength(601);
    await reopened.journal.close();
  });

  it('keeps the order of appends made at once, with a compaction among them', async () => {
    const now = Date.now();
    const { journal } = Journal.open(file, HOUR, now);
    await Promise.all(
      Array.from({ length: 1500 }, (_, i) => journal.append(entry(i, i < 1000 ? now - 2 * HOUR : now))),
    );
    await Promise.all([
      ...Array.from({ length: 50 }, (_, i) => journal.append(entry(2000 + i, now))),
      journal.maybeCompact(now),
      ...Array.from({ length: 50 }, (_, i) => journal.append(entry(3000 + i, now))),
    ]);
    await journal.close();
    const reopened = Journal.open(file, HOUR, now);
    const ids = reopened.lines.map((l) => (l.t === 'n' ? Number(l.id.slice(3)) : -1));
    expect(ids).toHaveLength(600);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    await reopened.journal.close();
  });
});

describe('WIS2 deletions in the state', () => {
  const log = pino({ level: 'silent' });
  const del = (path: string, mtimeMs: number, id = `del-${path}-${mtimeMs}`) =>
    ({ t: 'x', at: Date.now(), id, path, mtimeMs }) as const;

  it('a deletion drops the pending version it follows, keeps a newer one, and waits until recorded', () => {
    const s = new Wis2State(24 * HOUR, log);
    const now = Date.now();
    s.apply(entry(1, now - 2000));
    s.apply(entry(2, now));
    s.apply(del('c/f1.bufr', now - 1000));
    s.apply(del('c/f2.bufr', now - 1000));
    expect([...s.pending.keys()]).toEqual(['c/f2.bufr']);
    expect([...s.deletions.keys()].sort()).toEqual(['c/f1.bufr', 'c/f2.bufr']);
    // The same message again (another broker) is a duplicate; an older deletion changes nothing.
    expect(s.isDuplicate(del('c/f1.bufr', now - 1000))).toBe(true);
    s.apply(del('c/f1.bufr', now - 5000, 'older'));
    expect(s.deletions.get('c/f1.bufr')?.mtimeMs).toBe(now - 1000);
    // Recorded: it leaves; a record of another time does not remove it.
    s.apply({ t: 'y', at: now, path: 'c/f1.bufr', mtimeMs: now - 5000 });
    expect(s.deletions.has('c/f1.bufr')).toBe(true);
    s.apply({ t: 'y', at: now, path: 'c/f1.bufr', mtimeMs: now - 1000 });
    expect(s.deletions.has('c/f1.bufr')).toBe(false);
  });

  it('replays deletions from the journal until their record line', async () => {
    const tmp = await makeTmpDir('poller-journal-');
    try {
      const file = path.join(tmp.path, 'wis2', 'src.jsonl');
      const now = Date.now();
      const { journal } = Journal.open(file, 24 * HOUR, now);
      await journal.append(del('c/a.bufr', now));
      await journal.append(del('c/b.bufr', now));
      await journal.append({ t: 'y', at: now, path: 'c/a.bufr', mtimeMs: now });
      await journal.close();
      const again = Journal.open(file, 24 * HOUR, now);
      const s = new Wis2State(24 * HOUR, log);
      for (const l of again.lines) s.apply(l);
      expect([...s.deletions.keys()]).toEqual(['c/b.bufr']);
      await again.journal.close();
    } finally {
      await tmp.remove();
    }
  });
});
