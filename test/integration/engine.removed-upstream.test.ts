/**
 * Files removed upstream, end to end on a real FTP server: 50 files landed, 5 removed on the
 * server, a listing cut short by a cap in between (as pure-ftpd's 2,000-entry cap does: entries
 * missing and the listing flagged). Exactly the 5 are recorded as `gone` after `goneAfterListings`
 * complete listings, none wrongly; `mirrorDeletes` removes their landed copies and nothing else;
 * `poller files --state gone` and `poller why` say so.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openApp } from '../../src/cli/app.js';
import { runCycle } from '../../src/engine/cycle.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import type { Listing, Source } from '../../src/sources/source.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

/** The source as a capped server shows it: directory `b` lists its first 10 entries only, flagged. */
function capped(source: Source): Source {
  return {
    ...source,
    async list(dir, opts) {
      const listing = await source.list(dir, opts);
      if (dir !== 'b') return listing;
      const cut: Listing = listing.slice(0, 10);
      cut.truncated = true;
      return cut;
    },
  };
}

async function cycle(e: EngineEnv, cap = false) {
  process.env['TEST_FTP_PASSWORD'] = e.ftp.password;
  const app = await openApp({ configPath: e.configPath, logTo: 'stderr', logLevel: 'silent' });
  try {
    const src = app.config.sources[0];
    if (!src) throw new Error('no source');
    const source = app.source(src);
    return await runCycle(src, cap ? capped(source) : source, await app.cycleDeps(), {
      signal: app.shutdown.signal,
      settleWithinCycle: true,
    });
  } finally {
    await app.close();
  }
}

it('5 of 50 files removed upstream, a capped listing in between: exactly 5 gone, their copies removed, none wrongly', async () => {
  env = await startEngineEnv({ source: { goneAfterListings: 2, mirrorDeletes: true, stableListings: 1 }, plugins: [] });
  const names = Array.from({ length: 50 }, (_, i) => `${i < 25 ? 'a' : 'b'}/f${String(i).padStart(2, '0')}.bufr`);
  for (const n of names) await env.put(n, `data of ${n}`);
  expect(await cycle(env)).toMatchObject({ fetched: 50 });

  const removed = ['a/f03.bufr', 'a/f11.bufr', 'a/f24.bufr', 'b/f30.bufr', 'b/f49.bufr'];
  for (const r of removed) await rm(path.join(env.ftp.root, ...r.split('/')));
  const ledger = new SqliteLedger(env.ledgerPath);
  const gone = async () => (await ledger.files({ state: 'gone' })).map((f) => f.path).sort();
  try {
    // The capped listing misses 15 files of b that are still there: it proves nothing, counts nothing.
    await cycle(env, true);
    await cycle(env, true);
    expect(await gone()).toEqual([]);
    // One complete listing: missed once, not yet gone (goneAfterListings: 2).
    await cycle(env);
    expect(await gone()).toEqual([]);
    // A capped one between the two complete ones changes nothing either.
    await cycle(env, true);
    expect(await gone()).toEqual([]);
    await cycle(env);
    expect(await gone()).toEqual(removed);
    const processed = await ledger.files({ state: 'processed', limit: 100 });
    expect(processed.map((f) => f.path).sort()).toEqual(names.filter((n) => !removed.includes(n)).sort());
    // More complete listings: still exactly the five.
    await cycle(env);
    expect(await gone()).toEqual(removed);
  } finally {
    await ledger.close();
  }
  for (const n of names) {
    expect(existsSync(path.join(env.landing, 'radar', ...n.split('/'))), n).toBe(!removed.includes(n));
  }

  const files = await env.cli(['files', '--state', 'gone']);
  expect(files.code, files.stderr).toBe(0);
  for (const r of removed) expect(files.stdout).toContain(r);
  const why = await env.cli(['why', 'a/f03.bufr']);
  expect(why.stdout).toMatch(/removed upstream: missing from the complete listings since \d{4}-\d\d-\d\dT/);

  // Put back on the server, it is fetched anew.
  await env.put('a/f03.bufr', 'data of a/f03.bufr');
  await cycle(env);
  await cycle(env);
  expect(existsSync(path.join(env.landing, 'radar', 'a', 'f03.bufr'))).toBe(true);
}, 120_000);
