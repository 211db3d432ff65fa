/**
 * `poller demo --live` as a child process (the built CLI): the live feed on an embedded FTP
 * server and the daemon on it, with `/metrics`, `/api/status` and lateness per radar.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

const BIN = fileURLToPath(new URL('../../bin/poller.js', import.meta.url));

export interface LiveDemo {
  dir: string;
  base: string;
  child: ChildProcess;
  stdout(): string;
  metrics(): Promise<string>;
  status(): Promise<{
    sources: Array<{
      name: string;
      products: Array<{ product: string; state: string; arrivedMs: number | null; everyMs: number; graceMs: number }>;
    }>;
  }>;
  close(): Promise<void>;
}

export async function startLiveDemo(opts: { cadence: string; grace: string }): Promise<LiveDemo> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'poller-live-demo-'));
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      BIN,
      'demo',
      '--live',
      '--cadence',
      opts.cadence,
      '--grace',
      opts.grace,
      '--http-port',
      String(port),
      '--dir',
      dir,
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/healthz`)).ok, {
    timeoutMs: 30_000,
    intervalMs: 200,
    what: `the live demo's /healthz (stderr: ${err.slice(0, 300)})`,
  });
  return {
    dir,
    base,
    child,
    stdout: () => out,
    metrics: async () => (await fetch(`${base}/metrics`)).text(),
    status: async () => (await (await fetch(`${base}/api/status`)).json()) as never,
    async close() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
