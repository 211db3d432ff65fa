import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, type JournalEntry } from '../../src/sources/wis2/journal.js';
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

  it('gives back what was appended, drops lines past the keep window and a line torn by a crash', () => {
    const now = Date.now();
    const { journal, lines } = Journal.open(file, 24 * HOUR, now);
    expect(lines).toEqual([]);
    journal.append(entry(1, now - 30 * HOUR));
    journal.append(entry(2, now - HOUR));
    journal.append({ t: 'd', at: now, path: 'c/f2.bufr', mtimeMs: now - HOUR });
    journal.append(entry(3, now));
    journal.close();
    appendFileSync(file, '{"t":"n","at":1,"id":"torn');
    const again = Journal.open(file, 24 * HOUR, now);
    expect(again.lines.map((l) => (l.t === 'n' ? l.id : `done ${l.path}`))).toEqual(['id-2', 'done c/f2.bufr', 'id-3']);
    // Opening compacted the file: the expired and the torn lines are gone from disk too.
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(3);
    again.journal.close();
  });

  it('compacts once the file has doubled, keeping every line of the window', () => {
    const now = Date.now();
    const { journal } = Journal.open(file, HOUR, now);
    for (let i = 0; i < 600; i++) journal.append(entry(i, now - 2 * HOUR));
    for (let i = 600; i < 1200; i++) journal.append(entry(i, now));
    journal.maybeCompact(now);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(600);
    // Appends go on into the compacted file.
    journal.append(entry(5000, now));
    journal.close();
    const reopened = Journal.open(file, HOUR, now);
    expect(reopened.lines).toHaveLength(601);
    reopened.journal.close();
  });
});
