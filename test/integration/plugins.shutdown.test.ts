import { existsSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { processClaimed } from '../../src/engine/cycle.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import { ISOLATION_MODES } from '../../src/plugins/isolation/pool.js';
import { loadPlugins } from '../../src/plugins/loader.js';
import { PluginRunner } from '../../src/plugins/runner.js';
import { FIXTURE_PLUGINS } from '../helpers/engine-env.js';
import { createLogSink } from '../helpers/log-sink.js';
import { waitFor } from '../helpers/wait-for.js';

async function claimedFile(dir: string) {
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
  return { ledger, id, rec: rec! };
}

describe.each(ISOLATION_MODES)('plugin runs cut short by shutdown (isolate: %s)', (isolate) => {
  // A spin cannot be stopped in the poller's own thread: only a worker or child can be terminated.
  const cases = isolate === 'none' ? [false] : [false, true];
  it.each(cases)(
    'are retried at the next start without using up an attempt (ignoring the abort: %s)',
    async (ignoreAbort) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-shutdown-'));
      const { ledger, id, rec } = await claimedFile(dir);
      const started = path.join(dir, 'started');
      const [plugin] = await loadPlugins(
        [
          {
            use: path.join(FIXTURE_PLUGINS, 'waits-for-abort.mjs'),
            options: { started, ignoreAbort },
            maxAttempts: 1,
            concurrency: 1,
            isolate,
          },
        ],
        dir,
      );
      const shutdown = new AbortController();
      const sink = createLogSink('silent');
      const runner = new PluginRunner({
        plugins: [plugin!],
        log: sink.log,
        stateDir: dir,
        shutdownSignal: shutdown.signal,
      });
      await runner.setup();
      const deps = { ledger, runner, owner: 'me', retryBaseMs: 1000, retryMaxMs: 1000 };
      const summary = { processed: 0, failed: 0 };
      const done = processClaimed(rec, { src: { name: 's' }, deps, summary, emit: {}, log: sink.log });
      await waitFor(() => existsSync(started), { timeoutMs: 10_000, what: 'the run to start' });
      shutdown.abort(new Error('SIGTERM'));
      await done;
      const [run] = (await ledger.pluginRuns([id])).get(id) ?? [];
      expect(run).toMatchObject({ plugin: 'waits-for-abort', state: 'failed', attempts: 0 });
      const file = await ledger.get(id);
      expect(file?.state).toBe('failed');
      expect(file?.nextRetryMs).toBeLessThanOrEqual(Date.now());
      await runner.teardown();
      await ledger.close();
    },
  );
});
