/**
 * kill -9 of a poller in the middle of a cycle, then a restart: nothing lost, nothing fetched
 * twice, no partial file handed to a plugin.
 */
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ISOLATION_MODES } from '../../src/plugins/isolation/pool.js';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';
import { countBy, readRecords, sha256 } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

async function killAfter(env: EngineEnv, ready: () => boolean | Promise<boolean>): Promise<void> {
  const child = env.spawnCli(['run-once']);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await waitFor(ready, { timeoutMs: 20_000, intervalMs: 5 });
  child.kill('SIGKILL');
  await exited;
}

async function checkInvariants(env: EngineEnv, names: string[], fetchedBeforeKill: Set<string>): Promise<void> {
  const final = await env.cli(['run-once', '--json']);
  expect(final.code, final.stderr).toBe(0);
  // Nothing lost: every file processed, its landed bytes equal to the server's.
  const files = await env.ledger().files({ limit: 1000 });
  expect(
    files
      .filter((f) => f.state === 'processed')
      .map((f) => f.path)
      .sort(),
  ).toEqual(names);
  for (const n of names) {
    const remote = readFileSync(path.join(env.ftp.root, n));
    expect(sha256(readFileSync(path.join(env.landing, 'radar', n)))).toBe(sha256(remote));
  }
  // No partial file handed to a plugin: every recorded run saw the complete content.
  for (const r of readRecords(env.recordLog)) {
    expect(r.sha256).toBe(sha256(readFileSync(path.join(env.ftp.root, r.path))));
  }
  // Nothing fetched twice: a file landed before the kill is never downloaded again.
  const served = countBy(env.ftp.retrieved(), (p) => path.relative(env.ftp.root, p));
  for (const n of fetchedBeforeKill) expect(served.get(n), n).toBe(1);
  for (const n of names) expect(served.get(n) ?? 0, n).toBeLessThanOrEqual(2);
  expect(await readdir(path.join(env.landing, '.partial'))).toEqual([]);
}

async function landedNow(env: EngineEnv): Promise<Set<string>> {
  const rows = await env.ledger().files({ limit: 1000 });
  return new Set(rows.filter((r) => r.localPath !== null && r.state !== 'fetching').map((r) => r.path));
}

describe('kill -9 and restart', () => {
  it.each(ISOLATION_MODES)(
    'killed while plugins run (isolate: %s): the rest is fetched, unfinished runs run again, none twice to success',
    async (isolate) => {
      env = await startEngineEnv({
        plugins: (_dir, log) => [
          { use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log, delayMs: 100 }, concurrency: 1, isolate },
        ],
      });
      const names = Array.from({ length: 20 }, (_, i) => `d/${String(i).padStart(2, '0')}.bufr`);
      for (const [i, n] of names.entries()) await env.put(n, Buffer.alloc(50_000 + i, i));
      const e = env;
      await killAfter(e, () => readRecords(e.recordLog).length >= 3);
      const before = await landedNow(e);
      expect(before.size).toBeGreaterThan(0);
      await checkInvariants(e, names, before);
      // A run recorded as a success is never run again: a further run-once runs nothing.
      const runs = readRecords(e.recordLog).length;
      for (const n of names)
        expect(countBy(readRecords(e.recordLog), (r) => r.path).get(n) ?? 0, n).toBeLessThanOrEqual(2);
      const again = await e.cli(['run-once', '--json']);
      expect(again.code, again.stderr).toBe(0);
      expect(readRecords(e.recordLog)).toHaveLength(runs);
    },
  );

  it('killed mid-transfer: the partial is resumed, the file lands whole', async () => {
    env = await startEngineEnv({ source: { concurrency: 2 } });
    const names = Array.from({ length: 6 }, (_, i) => `big/${i}.bufr`);
    for (const [i, n] of names.entries()) await env.put(n, Buffer.alloc(8 * 1024 * 1024, i + 1));
    const e = env;
    const partialDir = path.join(e.landing, '.partial');
    await killAfter(e, async () => {
      try {
        return (await readdir(partialDir)).length > 0;
      } catch {
        return false;
      }
    });
    const before = await landedNow(e);
    await checkInvariants(e, names, before);
  });
});
