import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { openApp } from '../../src/cli/app.js';
import { runCycle } from '../../src/engine/cycle.js';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

// The configured claim lease covers every claim of the cycle: a file this cycle landed is claimed
// for processing with it too, not with a built-in lease (a takeover after a crash waits for it).
it('a landed file is claimed for processing with the configured claim lease', async () => {
  env = await startEngineEnv({
    plugins: (_dir, log) => [{ use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log, delayMs: 3_000 } }],
  });
  const e = env;
  await e.put('a.bufr', Buffer.alloc(1_000, 1));
  process.env['TEST_FTP_PASSWORD'] = e.ftp.password;
  const app = await openApp({ configPath: e.configPath, logTo: 'stderr', logLevel: 'silent' });
  const claimLeaseMs = 90_000;
  try {
    const src = app.config.sources[0]!;
    const deps = { ...(await app.cycleDeps()), claimLeaseMs };
    const cycle = runCycle(src, app.source(src), deps, { signal: app.shutdown.signal, settleWithinCycle: true });
    const db = new Database(e.ledgerPath, { readonly: true });
    let lease: { lease_until_ms: number; at: number } | undefined;
    try {
      await waitFor(
        () => {
          const row = db
            .prepare(`SELECT lease_until_ms FROM files WHERE path = 'a.bufr' AND state = 'processing'`)
            .get() as { lease_until_ms: number } | undefined;
          if (row) lease = { ...row, at: Date.now() };
          return row !== undefined;
        },
        { timeoutMs: 20_000, what: 'the file in processing' },
      );
    } finally {
      db.close();
    }
    const summary = await cycle;
    expect(summary.processed).toBe(1);
    const left = (lease?.lease_until_ms ?? 0) - (lease?.at ?? 0);
    // Taken at most the plugin's 3 s before the read; never the built-in 10 minutes.
    expect(left).toBeGreaterThan(claimLeaseMs - 10_000);
    expect(left).toBeLessThanOrEqual(claimLeaseMs);
  } finally {
    await app.close();
    delete process.env['TEST_FTP_PASSWORD'];
  }
}, 60_000);
