import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { processClaimed } from '../../src/engine/cycle.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import { definePlugin } from '../../src/plugins/api.js';
import type { LoadedPlugin } from '../../src/plugins/loader.js';
import { PluginRunner } from '../../src/plugins/runner.js';
import { createLogSink } from '../helpers/log-sink.js';

function loaded(plugin: ReturnType<typeof definePlugin>, maxAttempts = 1): LoadedPlugin {
  return {
    name: plugin.name,
    plugin,
    options: {},
    matches: () => true,
    timeoutMs: 60_000,
    maxAttempts,
    concurrency: 1,
    isolate: 'none',
    memoryLimitMb: 512,
    origin: 'test',
  };
}

describe('plugin runs cut short by shutdown', () => {
  it('are retried at the next start without using up an attempt (never quarantined by restarts)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-shutdown-'));
    const ledger = new SqliteLedger(path.join(dir, 'ledger.db'));
    const local = path.join(dir, 'f.bufr');
    writeFileSync(local, 'x');
    const t = Date.now();
    // As landing leaves it: the remote mtime set on the landed file.
    utimesSync(local, new Date(t - 3_600_000), new Date(t - 3_600_000));
    const { ready } = await ledger.observe(
      's',
      [
        {
          entry: {
            path: 'f.bufr',
            name: 'f.bufr',
            type: 'file',
            sizeBytes: 1,
            mtimeMs: t - 3_600_000,
            mtimePrecision: 's',
          },
        },
      ],
      { nowMs: t, minAgeMs: 0, stableListings: 1, oldEnoughMs: 0 },
    );
    const id = ready[0]!.id;
    await ledger.claimForFetch([id], 'me', t + 60_000, t);
    await ledger.markFetched([{ id, localPath: local }], 'me', t);
    const [rec] = await ledger.claimIdsForProcessing([id], 'me', t + 60_000, t);

    const shutdown = new AbortController();
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const slow = definePlugin({
      name: 'slow',
      process: (_file, ctx) =>
        new Promise<void>((_resolve, reject) => {
          started();
          ctx.signal.addEventListener('abort', () => reject(new Error('aborted')));
        }),
    });
    const sink = createLogSink('silent');
    const runner = new PluginRunner({
      plugins: [loaded(slow, 1)],
      log: sink.log,
      stateDir: dir,
      shutdownSignal: shutdown.signal,
    });
    const deps = { ledger, runner, owner: 'me', retryBaseMs: 1000, retryMaxMs: 1000 };
    const done = processClaimed(rec!, { name: 's' }, deps, { processed: 0, failed: 0 }, {}, sink.log);
    await running;
    shutdown.abort(new Error('SIGTERM'));
    await done;
    const [run] = (await ledger.pluginRuns([id])).get(id) ?? [];
    expect(run).toMatchObject({ plugin: 'slow', state: 'failed', attempts: 0 });
    const file = await ledger.get(id);
    expect(file?.state).toBe('failed');
    expect(file?.nextRetryMs).toBeLessThanOrEqual(Date.now());
    await ledger.close();
  });
});
