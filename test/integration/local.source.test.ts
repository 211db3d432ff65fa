import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PermanentError, SourceError } from '../../src/errors.js';
import { createLocalSource } from '../../src/sources/local/local-source.js';
import type { Source } from '../../src/sources/source.js';
import { collectingLogger, downloadToFile } from '../helpers/source-test-utils.js';

const MTIME_MS = 1_763_900_000_123;
const signal = () => new AbortController().signal;

let dir: string;
let out: string;
let source: Source;

beforeEach(async () => {
  const base = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'poller-local-')));
  dir = path.join(base, 'in');
  out = path.join(base, 'out');
  await fs.mkdir(path.join(dir, '2026', '11'), { recursive: true });
  await fs.mkdir(out);
  source = createLocalSource({
    name: 'test-local',
    protocol: 'file',
    host: '',
    port: 0,
    user: '',
    rootPath: dir,
    tls: { mode: 'none', insecure: false },
    timezone: 'UTC',
    maxConnections: 1,
    connectTimeoutMs: 1000,
    dataTimeoutMs: 1000,
    log: collectingLogger().log,
  });
});

afterEach(async () => {
  await source.close();
  await fs.rm(path.dirname(dir), { recursive: true, force: true });
});

describe('local source', () => {
  it('lists one directory with types, sizes and millisecond mtimes', async () => {
    await fs.writeFile(path.join(dir, 'höhe 01.bufr'), 'abc');
    await fs.utimes(path.join(dir, 'höhe 01.bufr'), MTIME_MS / 1000, MTIME_MS / 1000);
    await fs.symlink('höhe 01.bufr', path.join(dir, 'link.bufr'));
    await fs.writeFile(path.join(dir, '2026', '11', 'vol.bufr'), 'nested');

    const entries = await source.list('', { signal: signal() });
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect([...byName.keys()].sort()).toEqual(['2026', 'höhe 01.bufr', 'link.bufr']);
    expect(byName.get('höhe 01.bufr')).toEqual({
      path: 'höhe 01.bufr',
      name: 'höhe 01.bufr',
      type: 'file',
      sizeBytes: 3,
      mtimeMs: MTIME_MS,
      mtimePrecision: 'ms',
    });
    expect(byName.get('link.bufr')?.type).toBe('link');
    expect(byName.get('2026')?.type).toBe('dir');
    expect((await source.list('2026/11', { signal: signal() })).map((e) => e.path)).toEqual(['2026/11/vol.bufr']);
  });

  it('downloads a file, and the rest of it from an offset', async () => {
    const data = randomBytes(1024 * 1024 + 17);
    await fs.writeFile(path.join(dir, 'big.bin'), data);
    const whole = path.join(out, 'whole.bin');
    let counted = 0;
    await downloadToFile(source, 'big.bin', whole, { offsetBytes: 0, onBytes: (n) => (counted += n) });
    expect((await fs.readFile(whole)).equals(data)).toBe(true);
    expect(counted).toBe(data.length);

    const part = path.join(out, 'part.bin');
    await fs.writeFile(part, data.subarray(0, 300_001));
    await downloadToFile(source, 'big.bin', part, { offsetBytes: 300_001 });
    expect((await fs.readFile(part)).equals(data)).toBe(true);
  });

  it('passes an error of the destination stream through unchanged', async () => {
    await fs.writeFile(path.join(dir, 'big.bin'), randomBytes(2 * 1024 * 1024));
    const diskFull = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    let writes = 0;
    const failing = new Writable({
      write: (_chunk, _enc, cb) => (++writes >= 3 ? cb(diskFull) : cb()),
    });
    const err = await source
      .download('big.bin', failing, { offsetBytes: 0, signal: signal() })
      .catch((e: unknown) => e);
    expect(err).toBe(diskFull);
  });

  it('classifies missing files, a missing root and paths outside the root', async () => {
    const missing = await source.list('nope', { signal: signal() }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(PermanentError);
    expect(missing).toMatchObject({ code: 'POLLER_LOCAL_NOT_FOUND' });
    const outside = await source.stat!('../out', { signal: signal() }).catch((e: unknown) => e);
    expect(outside).toMatchObject({ code: 'POLLER_LOCAL_PATH_OUTSIDE_ROOT' });
    await fs.rm(dir, { recursive: true });
    const rootGone = await source.list('', { signal: signal() }).catch((e: unknown) => e);
    expect(rootGone).toBeInstanceOf(SourceError);
  });

  it('watch reports a new file and a file in a new directory', async () => {
    const controller = new AbortController();
    const seen = new Set<string>();
    let wake: (() => void) | undefined;
    await source.watch!(
      (rel) => {
        seen.add(rel);
        wake?.();
      },
      { signal: controller.signal },
    );
    const waitForPath = (rel: string): Promise<void> =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (seen.has(rel)) resolve();
        };
        wake = check;
        check();
      });

    await fs.writeFile(path.join(dir, 'new.bufr'), 'x');
    await waitForPath('new.bufr');
    await fs.mkdir(path.join(dir, '2026', '12'));
    await fs.writeFile(path.join(dir, '2026', '12', 'deep.bufr'), 'y');
    await waitForPath('2026/12/deep.bufr');
    controller.abort();
  });
});
