/**
 * A local directory source is driven by its watcher: a file dropped into the directory is
 * taken at once, although the source's schedule would only rescan an hour later.
 */
import { mkdir, rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, editConfig, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { readRecords } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
let daemon: Daemon | undefined;
afterEach(async () => {
  daemon?.child.kill('SIGKILL');
  await daemon?.exited;
  daemon = undefined;
  await env?.close();
  env = undefined;
});

describe('poller run: local source', () => {
  it('a file dropped into the directory is processed without waiting for the schedule', async () => {
    env = await startEngineEnv();
    const e = env;
    const incoming = path.join(e.dir, 'incoming');
    await mkdir(incoming);
    await editConfig(e, (c) => {
      const [src] = c['sources'] as Array<Record<string, unknown>>;
      const { password: _password, ...rest } = src ?? {};
      return { ...c, sources: [{ ...rest, name: 'gts', url: pathToFileURL(incoming).href, every: '1h' }] };
    });
    daemon = await startDaemon(e);
    // The first cycle runs at start; the next scheduled one is an hour away.
    await daemon.waitForEvent('cycle.finished');

    // Written beside the directory and renamed in, as an upload tool does; old enough at first
    // sight, so the settle rule takes it from the first listing.
    const staged = path.join(e.dir, 'synop.tmp');
    await writeFile(staged, 'BUFR');
    const old = new Date(Date.now() - 3_600_000);
    await utimes(staged, old, old);
    await mkdir(path.join(incoming, 'obs'));
    await rename(staged, path.join(incoming, 'obs', 'synop.bufr'));
    await waitFor(() => readRecords(e.recordLog).length === 1, { timeoutMs: 8_000, what: 'file from the watcher' });
    expect(readRecords(e.recordLog)[0]?.path).toBe('obs/synop.bufr');
  });
});
