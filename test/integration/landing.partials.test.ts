import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Source } from '../../src/sources/source.js';
import { landFile, sweepPartials } from '../../src/transfer/landing.js';
import { partialDir, partialPathFor } from '../../src/transfer/landing-path.js';
import { makeTmpDir } from '../helpers/tmp-dir.js';

/** Serves one byte string from any offset, as a server would after REST. */
function bytesSource(content: string): Source {
  return {
    displayUrl: 'test://',
    async list() {
      return [];
    },
    async download(_p: string, to: Writable, opts) {
      const rest = content.slice(opts.offsetBytes);
      await new Promise<void>((resolve, reject) => to.write(rest, (err) => (err ? reject(err) : resolve())));
    },
    async close() {},
  };
}

describe('partial files', () => {
  it('resume only their own version: a partial of older content is never completed', async () => {
    const tmp = await makeTmpDir('poller-partials-');
    const landing = path.join(tmp.path, 'landing');
    const signal = new AbortController().signal;
    await mkdir(partialDir(landing), { recursive: true });
    // A partial of version (10 bytes, t=1000) of row 7 ...
    await writeFile(partialPathFor(landing, 7, 10, 1000), 'OLDOLD');
    // ... and the row moved to version (12 bytes, t=2000) while settling.
    const content = 'new content!';
    const landed = await landFile(bytesSource(content), {
      landingRoot: landing,
      sourceName: 's',
      fileId: 7,
      entry: { path: 'a.bufr', sizeBytes: content.length, mtimeMs: 2000 },
      signal,
    });
    expect(await readFile(landed.localPath, 'utf8')).toBe(content);
    expect(landed.resumedFromBytes).toBe(0);
    // The old version's partial stays until the start-up sweep: it is never resumed.
    expect(await readdir(partialDir(landing))).toEqual([path.basename(partialPathFor(landing, 7, 10, 1000))]);

    // Same version: resumed from the partial's size.
    await writeFile(partialPathFor(landing, 8, content.length, 3000), content.slice(0, 4));
    const resumed = await landFile(bytesSource(content), {
      landingRoot: landing,
      sourceName: 's',
      fileId: 8,
      entry: { path: 'b.bufr', sizeBytes: content.length, mtimeMs: 3000 },
      signal,
    });
    expect(resumed.resumedFromBytes).toBe(4);
    expect(await readFile(resumed.localPath, 'utf8')).toBe(content);
    await tmp.remove();
  });

  it('keep what a small file received before its transfer broke, and the next attempt resumes from there', async () => {
    const tmp = await makeTmpDir('poller-partials-');
    const landing = path.join(tmp.path, 'landing');
    const signal = new AbortController().signal;
    const content = 'received in memory, then the connection broke';
    const breaking: Source = {
      ...bytesSource(content),
      async download(_p: string, to: Writable) {
        await new Promise<void>((resolve, reject) =>
          to.write(content.slice(0, 10), (e) => (e ? reject(e) : resolve())),
        );
        throw new Error('connection reset');
      },
    };
    const entry = { path: 'c.bufr', sizeBytes: content.length, mtimeMs: 4000 };
    const opts = { landingRoot: landing, sourceName: 's', fileId: 9, entry, signal };
    await expect(landFile(breaking, opts)).rejects.toThrow('connection reset');
    expect(await readFile(partialPathFor(landing, 9, content.length, 4000), 'utf8')).toBe(content.slice(0, 10));
    const resumed = await landFile(bytesSource(content), opts);
    expect(resumed.resumedFromBytes).toBe(10);
    expect(await readFile(resumed.localPath, 'utf8')).toBe(content);
    expect(await readdir(partialDir(landing))).toEqual([]);
    await tmp.remove();
  });

  it('are swept at start-up when no fetchable row owns them', async () => {
    const tmp = await makeTmpDir('poller-sweep-');
    await mkdir(partialDir(tmp.path), { recursive: true });
    await writeFile(partialPathFor(tmp.path, 1, 5, 1), 'x');
    await writeFile(partialPathFor(tmp.path, 2, 5, 1), 'x');
    await writeFile(path.join(partialDir(tmp.path), 'stray'), 'x');
    // A third partial of row 2 at an older version is stale too.
    await writeFile(partialPathFor(tmp.path, 2, 4, 1), 'x');
    expect(await sweepPartials(tmp.path, [{ id: 2, sizeBytes: 5, mtimeMs: 1 }])).toBe(3);
    expect(await readdir(partialDir(tmp.path))).toEqual([path.basename(partialPathFor(tmp.path, 2, 5, 1))]);
    expect(existsSync(tmp.path)).toBe(true);
    await tmp.remove();
  });
});
