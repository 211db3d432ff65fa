import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { openApp } from '../../src/cli/app.js';
import { runCycle } from '../../src/engine/cycle.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { createLogSink } from '../helpers/log-sink.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

// A claim taken over by another process (its lease ran out, or a shared ledger's sweep handed it
// to another host) must stop the transfer it covers, not only have its commit refused: the new
// owner fetches the file, and two downloads of it would race on the landing path.
it('a claim taken over while its transfer runs stops that transfer; the new owner keeps the row', async () => {
  // The data connection stalls after 200,000 bytes and stays silent: only the lost claim can end
  // this transfer before the (long) data timeout.
  env = await startEngineEnv({
    ftp: { faults: { stallDataAfterBytes: 200_000, stallTimes: 1 } },
    source: { dataTimeout: '120s' },
  });
  const e = env;
  await e.put('big.bufr', Buffer.alloc(2_000_000, 7));
  process.env['TEST_FTP_PASSWORD'] = e.ftp.password;
  const app = await openApp({ configPath: e.configPath, logTo: 'stderr', logLevel: 'silent' });
  const logs = createLogSink('info');
  try {
    const src = app.config.sources[0]!;
    // Renewed every 300 ms, so the takeover is seen at once.
    const deps = { ...(await app.cycleDeps()), log: logs.log, claimLeaseMs: 900 };
    const cycle = runCycle(src, app.source(src), deps, { signal: app.shutdown.signal, settleWithinCycle: true });
    const partialDir = path.join(e.landing, '.partial');
    await waitFor(
      async () => {
        const [name] = await readdir(partialDir).catch(() => [] as string[]);
        return name !== undefined && (await stat(path.join(partialDir, name))).size >= 200_000;
      },
      { timeoutMs: 20_000, what: 'the stalled transfer' },
    );
    // Another process takes the claim over, as recovery does when a lease has expired.
    const db = new Database(e.ledgerPath);
    const taken = db
      .prepare(
        `UPDATE files SET claimed_by = 'other-host:1:x', lease_until_ms = ? WHERE path = 'big.bufr' AND state = 'fetching'`,
      )
      .run(Date.now() + 3_600_000);
    db.close();
    expect(taken.changes).toBe(1);

    const summary = await cycle;
    expect(summary.fetched).toBe(0);
    expect(logs.events('claim.lost')).toHaveLength(1);
    // Nothing landed, and the row is still the new owner's: this process wrote nothing over it.
    expect(existsSync(path.join(e.landing, 'radar', 'big.bufr'))).toBe(false);
    const [row] = await e.ledger().history('radar', 'big.bufr');
    expect(row).toMatchObject({ state: 'fetching', claimedBy: 'other-host:1:x' });
  } finally {
    await app.close();
    delete process.env['TEST_FTP_PASSWORD'];
  }
}, 60_000);
