/**
 * SIGTERM while a large transfer is under way: the daemon waits out its grace period, aborts
 * the transfer, leaves the partial file for resume and the ledger without a claim, and exits 0.
 * The next run resumes from the partial instead of starting over.
 */
import { readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import type { FtpServerFaults } from '../helpers/ftp-server.js';
import { readRecords, sha256 } from '../helpers/records.js';
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

const STALL_AT_BYTES = 256 * 1024;

async function partialBytes(landing: string): Promise<number> {
  const dir = path.join(landing, '.partial');
  let total = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) total += (await stat(path.join(dir, name))).size;
  return total;
}

describe('poller run: SIGTERM', () => {
  it('during a large transfer: grace, abort, resumable partial, no claim left, exit 0; the next run resumes', async () => {
    // The server sends the first bytes of the file and then nothing: a transfer that cannot end by itself.
    const faults: FtpServerFaults = { stallDataAfterBytes: STALL_AT_BYTES };
    env = await startEngineEnv({ ftp: { faults }, source: { every: '200ms' } });
    const e = env;
    const content = Buffer.alloc(2 * 1024 * 1024, 7);
    await e.put('big/volume.bufr', content);
    daemon = await startDaemon(e, ['--grace', '300ms']);
    await waitFor(async () => (await partialBytes(e.landing)) >= STALL_AT_BYTES, {
      timeoutMs: 8_000,
      what: 'partial file with the first bytes',
    });

    daemon.child.kill('SIGTERM');
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    const events = daemon.lines().map((l) => l.event);
    expect(events).toContain('daemon.stopping');
    expect(events).toContain('daemon.grace_expired');
    expect(events.at(-1)).toBe('daemon.stopped');

    // Resumable: the partial file stays, and the ledger holds no claim on the file.
    expect(await partialBytes(e.landing)).toBe(STALL_AT_BYTES);
    const [row] = await e.ledger().files({ limit: 10 });
    expect(row).toMatchObject({ path: 'big/volume.bufr', state: 'seen', leaseUntilMs: null });
    expect(readRecords(e.recordLog)).toEqual([]);

    // The server behaves again: the next run fetches only the rest.
    delete faults.stallDataAfterBytes;
    const rerun = await e.cli(['run-once', '--log-level', 'info']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const fetched = rerun.stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event?: string; resumedFrom?: number })
      .find((l) => l.event === 'file.fetched');
    expect(fetched?.resumedFrom).toBe(STALL_AT_BYTES);
    expect(sha256(readFileSync(path.join(e.landing, 'radar', 'big', 'volume.bufr')))).toBe(sha256(content));
    expect(readRecords(e.recordLog).map((r) => r.path)).toEqual(['big/volume.bufr']);
  });
});
