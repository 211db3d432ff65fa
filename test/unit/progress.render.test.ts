import { describe, expect, it } from 'vitest';
import { createProgress } from '../../src/cli/progress.js';
import { waitFor } from '../helpers/wait-for.js';

function terminal(isTTY: boolean) {
  const writes: string[] = [];
  return { out: { isTTY, columns: 120, write: (t: string) => writes.push(t) }, writes };
}

describe('createProgress', () => {
  it('draws one line per source with files, bytes, rate and ETA, redrawn in place', () => {
    const { out, writes } = terminal(true);
    let now = 0;
    const progress = createProgress(out, ['north', 'south'], () => now);
    const e = progress.events;
    e.listed?.('north', 10, false);
    e.claimed?.('north', 4, 4096);
    e.bytes?.('north', 0);
    now = 2_000;
    e.bytes?.('north', 1024);
    e.fetched?.('north', 'a', 1024, 5, 0);
    e.listed?.('south', 3, false);
    // Between redraws: draw through stop() with the state as it is, then check what it says.
    const before = writes.length;
    progress.stop();
    const text = writes.slice(before).join('');
    expect(text).toContain('north  1/4 files  1.0 KiB/4.0 KiB  512 B/s  done');
    expect(text).toContain('south  listing… 3 files seen');
    progress.stop();
    expect(writes.length).toBe(before + 1);
  });

  it('shows an ETA while bytes are left', async () => {
    const { out, writes } = terminal(true);
    let now = 0;
    const progress = createProgress(out, ['north'], () => now);
    progress.events.claimed?.('north', 2, 3000);
    progress.events.bytes?.('north', 0);
    now = 1_000;
    progress.events.bytes?.('north', 1000);
    // The redraw timer runs every 200 ms.
    await waitFor(() => writes.some((w) => w.includes('ETA 2s')), { what: 'a redraw with the ETA' });
    progress.stop();
    expect(writes[0]?.startsWith('\r\x1b[2K')).toBe(true);
    expect(writes.at(-1)).toMatch(/^\x1b\[1A/);
  });

  it('writes nothing when the output is not a terminal', () => {
    const { out, writes } = terminal(false);
    const progress = createProgress(out, ['north']);
    progress.events.claimed?.('north', 1, 10);
    progress.stop();
    expect(writes).toEqual([]);
  });
});
