import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../src/errors.js';
import type { Source } from '../../src/sources/source.js';
import { landFile } from '../../src/transfer/landing.js';
import { partialDir, partialPathFor } from '../../src/transfer/landing-path.js';
import { makeTmpDir } from '../helpers/tmp-dir.js';

/** Serves a buffer from any offset in many small writes, as a socket would. */
function chunkedSource(content: Buffer): Source {
  return {
    displayUrl: 'test://',
    async list() {
      return [];
    },
    async download(_p: string, to: Writable, opts) {
      for (let at = opts.offsetBytes; at < content.length; at += 7000) {
        const chunk = content.subarray(at, Math.min(content.length, at + 7000));
        if (!to.write(chunk)) await new Promise((r) => to.once('drain', r));
      }
    },
    async close() {},
  };
}

const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('base64');

describe('landing integrity', () => {
  it('hashes the landed bytes while they stream, after a resume and for a file already in place', async () => {
    const tmp = await makeTmpDir('poller-hash-');
    const landing = path.join(tmp.path, 'landing');
    const signal = new AbortController().signal;
    const content = randomBytes(300_000);
    const entry = { path: 'd/a.h5', sizeBytes: content.length, mtimeMs: 5000 };
    const base = { landingRoot: landing, sourceName: 's', signal, sha512: true };

    const fresh = await landFile(chunkedSource(content), { ...base, fileId: 1, entry });
    expect(fresh.sha512).toBe(sha512(content));
    // Already landed (a crash before the commit): hashed from the file.
    const again = await landFile(chunkedSource(content), { ...base, fileId: 1, entry });
    expect(again.bytesTransferred).toBe(0);
    expect(again.sha512).toBe(sha512(content));

    // Resumed: the prefix on disk is part of the hash.
    const entry2 = { ...entry, path: 'd/b.h5' };
    await mkdir(partialDir(landing), { recursive: true });
    await writeFile(partialPathFor(landing, 2, content.length, 5000), content.subarray(0, 123_457));
    const resumed = await landFile(chunkedSource(content), { ...base, fileId: 2, entry: entry2 });
    expect(resumed.resumedFromBytes).toBe(123_457);
    expect(resumed.sha512).toBe(sha512(content));

    // Not asked: no hash.
    const plain = await landFile(chunkedSource(content), {
      ...base,
      sha512: false,
      fileId: 3,
      entry: { ...entry, path: 'c' },
    });
    expect(plain.sha512).toBeUndefined();
    await tmp.remove();
  });

  it('checks an announced digest over every byte, a resumed prefix too, and lands nothing on a mismatch', async () => {
    const tmp = await makeTmpDir('poller-integrity-');
    const landing = path.join(tmp.path, 'landing');
    const signal = new AbortController().signal;
    const content = randomBytes(200_000);
    const entry = { path: 'd/x.bufr', sizeBytes: content.length, mtimeMs: 5000 };
    const sha256 = createHash('sha256').update(content).digest();
    const base = { landingRoot: landing, sourceName: 's', signal };

    // Resumed from a prefix on disk, sha256 announced (and sha512 asked for events too).
    await mkdir(partialDir(landing), { recursive: true });
    await writeFile(partialPathFor(landing, 1, content.length, 5000), content.subarray(0, 77_777));
    const ok = await landFile(chunkedSource(content), {
      ...base,
      fileId: 1,
      entry,
      sha512: true,
      integrity: { method: 'sha256', digest: sha256 },
    });
    expect(ok).toMatchObject({ resumedFromBytes: 77_777, sha512: sha512(content) });

    // A prefix on disk that is not the file's: the whole is wrong, so nothing lands.
    const bad = Buffer.from(content);
    bad[10] = (bad[10] as number) ^ 0xff;
    await writeFile(partialPathFor(landing, 2, content.length, 5000), bad.subarray(0, 50_000));
    const refused = landFile(chunkedSource(content), {
      ...base,
      fileId: 2,
      entry: { ...entry, path: 'd/y.bufr' },
      integrity: { method: 'sha512', digest: createHash('sha512').update(content).digest() },
    });
    await expect(refused).rejects.toBeInstanceOf(PermanentError);
    await expect(refused).rejects.toMatchObject({ code: 'POLLER_LANDING_INTEGRITY_MISMATCH' });
    expect(await readdir(path.join(landing, 's', 'd'))).toEqual(['x.bufr']);
    expect(await readdir(partialDir(landing))).toEqual([]);
    await tmp.remove();
  });
});
