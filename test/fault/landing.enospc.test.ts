/**
 * A full landing filesystem (a 2 MiB tmpfs): the source pauses for the cycle with one clear log
 * line, no landed file is corrupt, and everything lands once space returns.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { readRecords, sha256 } from '../helpers/records.js';

const run = promisify(execFile);

let env: EngineEnv | undefined;
let mounted: string | undefined;
afterEach(async () => {
  if (mounted) await run('umount', [mounted]).catch(() => run('umount', ['-l', mounted as string]));
  mounted = undefined;
  await env?.close();
  env = undefined;
});

/** Mounts a tmpfs of `size` on `dir`; the reason it could not, when it could not. */
async function mountTmpfs(dir: string, size: string): Promise<string | undefined> {
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
    return undefined;
  } catch (err) {
    return (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

function pausedLines(stderr: string): Array<{ event: string; err: { code: string; message: string }; msg: string }> {
  return stderr
    .split('\n')
    .filter((l) => l.includes('"source.paused"'))
    .map((l) => JSON.parse(l) as { event: string; err: { code: string; message: string }; msg: string });
}

it('a full landing directory pauses the source with one log line, corrupts nothing, and recovers', async (ctx) => {
  env = await startEngineEnv({ source: { concurrency: 2 } });
  await mkdir(env.landing, { recursive: true });
  const refused = await mountTmpfs(env.landing, '2m');
  if (refused !== undefined) {
    console.log(`landing.enospc: SKIPPED, cannot mount a tmpfs here (${refused}); run as root to exercise ENOSPC`);
    ctx.skip();
    return;
  }
  mounted = env.landing;
  const names = Array.from({ length: 10 }, (_, i) => `vol/${String(i).padStart(2, '0')}.bufr`);
  for (const [i, n] of names.entries()) await env.put(n, Buffer.alloc(400_000, i + 1));

  const full = await env.cli(['run-once', '--json']);
  expect(full.code, full.stderr).toBe(1);
  const paused = pausedLines(full.stderr);
  expect(paused, full.stderr).toHaveLength(1);
  expect(paused[0]?.err.code).toBe('POLLER_LANDING_NO_SPACE');
  expect(paused[0]?.err.message).toContain(env.landing);
  expect(paused[0]?.err.message).toMatch(/free space/);
  // One line for the pause, not one error per file.
  const perFile = full.stderr.split('\n').filter((l) => /"file\.(fetch_failed|quarantined)"/.test(l));
  expect(perFile).toEqual([]);
  const summary = JSON.parse(full.stdout) as { sources: Array<{ fetched: number; error?: { code: string } }> };
  expect(summary.sources[0]?.error?.code).toBe('POLLER_LANDING_NO_SPACE');
  const landedWhileFull = summary.sources[0]?.fetched ?? 0;
  expect(landedWhileFull).toBeLessThan(names.length);

  // Nothing corrupt: every landed file is the server's exact bytes; only .partial may be short.
  const landedFiles = (await filesUnder(path.join(env.landing, 'radar'))).map((f) =>
    path.relative(path.join(env?.landing ?? '', 'radar'), f),
  );
  for (const rel of landedFiles) {
    expect(sha256(readFileSync(path.join(env.landing, 'radar', rel)))).toBe(
      sha256(readFileSync(path.join(env.ftp.root, rel))),
    );
  }
  for (const r of readRecords(env.recordLog)) {
    expect(r.sha256).toBe(sha256(readFileSync(path.join(env.ftp.root, r.path))));
  }
  const rows = await env.ledger().files({ limit: 100 });
  expect(rows.filter((r) => r.state === 'quarantined')).toEqual([]);
  expect(rows.filter((r) => r.state === 'fetching' || r.state === 'processing')).toEqual([]);
  const partialBytes = (await filesUnder(path.join(env.landing, '.partial'))).length;

  // Space returns: the same filesystem grows; the next run lands the rest.
  await run('mount', ['-o', 'remount,size=16m', env.landing]);
  const after = await env.cli(['run-once', '--json']);
  expect(after.code, after.stderr).toBe(0);
  expect(pausedLines(after.stderr)).toEqual([]);
  const final = await env.ledger().files({ limit: 100 });
  expect(
    final
      .filter((r) => r.state === 'processed')
      .map((r) => r.path)
      .sort(),
  ).toEqual(names);
  for (const n of names) {
    expect(sha256(readFileSync(path.join(env.landing, 'radar', n)))).toBe(
      sha256(readFileSync(path.join(env.ftp.root, n))),
    );
  }
  expect(await readdir(path.join(env.landing, '.partial'))).toEqual([]);
  console.log(
    `landing.enospc: ${landedWhileFull}/${names.length} landed on the full 2 MiB tmpfs, 1 source.paused line, ` +
      `${partialBytes} partial kept, ${names.length}/${names.length} byte-exact after space returned`,
  );
});
