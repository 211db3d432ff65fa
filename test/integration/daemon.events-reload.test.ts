/**
 * SIGHUP reloads `events:`: a sink added, changed or removed takes effect without a restart.
 * The old dispatchers close before the new ones start; nothing pending is lost.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, editConfig, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { waitFor } from '../helpers/wait-for.js';

/** WNM sinks announce links under a public base (a subscriber cannot follow the FTP source's). */
const PUBLIC_BASE = 'https://data.example.org/poller';

let env: EngineEnv | undefined;
let daemon: Daemon | undefined;
afterEach(async () => {
  daemon?.child.kill('SIGKILL');
  await daemon?.exited;
  daemon = undefined;
  await env?.close();
  env = undefined;
});

/** The data events (WNM) of a JSON-lines sink, by data path. */
function announced(file: string): Array<{ path: string; integrity: unknown }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(
      (l) =>
        (JSON.parse(l) as { message: { type?: string; properties?: { data_id: string; integrity?: unknown } } })
          .message,
    )
    .filter((e) => e.type === 'Feature')
    .map((e) => ({
      path: String(e.properties?.data_id).split('/').slice(2).join('/'),
      integrity: e.properties?.integrity,
    }));
}

describe('poller run: SIGHUP reloads events', () => {
  it('adds, replaces and removes sinks; the next files go to the new ones only', async () => {
    env = await startEngineEnv({ source: { every: '200ms' } });
    const e = env;
    const first = path.join(e.dir, 'first.jsonl');
    const second = path.join(e.dir, 'second.jsonl');
    // No events at start.
    daemon = await startDaemon(e);
    await e.put('a/before.bufr', 'no sink yet');
    await daemon.waitForEvent('file.fetched', (l) => l['path'] === 'a/before.bufr', 20_000);

    await editConfig(e, (c) => ({
      ...c,
      events: {
        centreId: 'xx-test',
        sinks: [{ name: 'first', type: 'file', publicBaseUrl: PUBLIC_BASE, url: './first.jsonl', kinds: ['fetched'] }],
      },
    }));
    daemon.child.kill('SIGHUP');
    await daemon.waitForEvent('events.reloaded', undefined, 20_000);
    const reloaded = await daemon.waitForEvent('config.reloaded', undefined, 20_000);
    // A cycle under way at the reload keeps the settings it started with (no hashing yet); the
    // files of the cycles that start after it are hashed. Wait for one of those to have run.
    const at = (l: object) => Date.parse(String((l as Record<string, unknown>)['time']));
    const startedAfter = (l: object) => at(l) - Number((l as Record<string, unknown>)['durationMs']) > at(reloaded);
    await daemon.waitForEvent('cycle.finished', startedAfter, 20_000);
    await e.put('a/one.bufr', 'to the first sink');
    await waitFor(() => announced(first).some((x) => x.path === 'a/one.bufr'), {
      timeoutMs: 20_000,
      what: 'first sink',
    });
    // The daemon hashes landed files once a sink announces them.
    expect(announced(first).find((x) => x.path === 'a/one.bufr')?.integrity).toMatchObject({ method: 'sha512' });

    await editConfig(e, (c) => ({
      ...c,
      events: {
        centreId: 'xx-test',
        sinks: [
          { name: 'second', type: 'file', publicBaseUrl: PUBLIC_BASE, url: './second.jsonl', kinds: ['fetched'] },
        ],
      },
    }));
    daemon.child.kill('SIGHUP');
    await waitFor(() => daemon?.lines().filter((l) => l.event === 'events.reloaded').length === 2, {
      timeoutMs: 20_000,
      what: 'second reload',
    });
    await e.put('a/two.bufr', 'to the second sink');
    await waitFor(() => announced(second).some((x) => x.path === 'a/two.bufr'), {
      timeoutMs: 20_000,
      what: 'second sink',
    });
    expect(announced(first).map((x) => x.path)).toEqual(['a/one.bufr']);
    expect(announced(second).map((x) => x.path)).toEqual(['a/two.bufr']);

    // Events removed: files still land, and no sink gets them.
    await editConfig(e, (c) => {
      const { events: _gone, ...rest } = c;
      return rest;
    });
    daemon.child.kill('SIGHUP');
    await waitFor(() => daemon?.lines().filter((l) => l.event === 'events.reloaded').length === 3, {
      timeoutMs: 20_000,
      what: 'third reload',
    });
    await e.put('a/three.bufr', 'to no sink');
    await daemon.waitForEvent('file.fetched', (l) => l['path'] === 'a/three.bufr', 20_000);
    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(announced(first).map((x) => x.path)).toEqual(['a/one.bufr']);
    expect(announced(second).map((x) => x.path)).toEqual(['a/two.bufr']);
  });
});
