/**
 * A local directory source is driven by its watcher: a file dropped into the directory is
 * taken at once, although the source's schedule would only rescan an hour later. Out of inotify
 * watches, it says so once and is polled by its schedule.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdir, rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { type Daemon, editConfig, startDaemon } from '../helpers/daemon.js';
import { type EngineEnv, REPO_ROOT, startEngineEnv } from '../helpers/engine-env.js';
import { readRecords } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
let daemon: Daemon | undefined;
let limited: ChildProcess | undefined;
afterEach(async () => {
  if (limited && limited.exitCode === null && limited.signalCode === null) {
    const gone = new Promise((r) => limited?.once('exit', r));
    limited.kill('SIGKILL');
    await gone;
  }
  limited = undefined;
  daemon?.child.kill('SIGKILL');
  await daemon?.exited;
  daemon = undefined;
  await env?.close();
  env = undefined;
});

describe('poller run: local source', () => {
  it('a file dropped into the directory is processed without waiting for the schedule', async () => {
    env = await startEngineEnv();
    const e = env;
    const incoming = path.join(e.dir, 'incoming');
    await mkdir(incoming);
    await editConfig(e, (c) => {
      const [src] = c['sources'] as Array<Record<string, unknown>>;
      const { password: _password, ...rest } = src ?? {};
      return { ...c, sources: [{ ...rest, name: 'gts', url: pathToFileURL(incoming).href, every: '1h' }] };
    });
    daemon = await startDaemon(e);
    // The first cycle runs at start; the next scheduled one is an hour away.
    await daemon.waitForEvent('cycle.finished');

    // Written beside the directory and renamed in, as an upload tool does; old enough at first
    // sight, so the settle rule takes it from the first listing.
    const staged = path.join(e.dir, 'synop.tmp');
    await writeFile(staged, 'BUFR');
    const old = new Date(Date.now() - 3_600_000);
    await utimes(staged, old, old);
    await mkdir(path.join(incoming, 'obs'));
    await rename(staged, path.join(incoming, 'obs', 'synop.bufr'));
    await waitFor(() => readRecords(e.recordLog).length === 1, { timeoutMs: 8_000, what: 'file from the watcher' });
    expect(readRecords(e.recordLog)[0]?.path).toBe('obs/synop.bufr');
  });

  it('out of inotify watches: one warning line, then the schedule takes the files (a kernel limit, not a mock)', async (ctx) => {
    // inotify limits are counted per user namespace (Linux 5.11+): a namespace of its own with a
    // limit of 3 watches gives the daemon real ENOSPC without touching the host's sysctl.
    const probe = spawnSync('unshare', ['-U', '-r', 'sh', '-c', 'echo 3 > /proc/sys/user/max_inotify_watches'], {
      encoding: 'utf8',
    });
    if (probe.status !== 0) {
      console.warn(
        `skipped: no user namespace with its own inotify limit here (${probe.stderr.trim() || probe.error})`,
      );
      ctx.skip();
    }
    env = await startEngineEnv();
    const e = env;
    const incoming = path.join(e.dir, 'incoming');
    // Six directories in the window, three watches allowed.
    for (let i = 0; i < 6; i++) await mkdir(path.join(incoming, `d${i}`), { recursive: true });
    await editConfig(e, (c) => {
      const [src] = c['sources'] as Array<Record<string, unknown>>;
      const { password: _password, ...rest } = src ?? {};
      return {
        ...c,
        sources: [{ ...rest, name: 'gts', url: pathToFileURL(incoming).href, every: '1s', maxAge: '1h' }],
      };
    });
    const child = spawn(
      'unshare',
      [
        '-U',
        '-r',
        'sh',
        '-c',
        'echo 3 > /proc/sys/user/max_inotify_watches && exec "$0" "$@"',
        process.execPath,
        path.join(REPO_ROOT, 'bin', 'poller.js'),
        'run',
        '--config',
        e.configPath,
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    limited = child;
    const lines: Array<Record<string, unknown>> = [];
    let buffered = '';
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const p of parts) {
        try {
          lines.push(JSON.parse(p) as Record<string, unknown>);
        } catch {
          // not a log line
        }
      }
    });
    const fallback = await waitFor(() => lines.find((l) => l['event'] === 'watch.fallback'), {
      timeoutMs: 10_000,
      what: `watch.fallback line (stderr: ${stderr.slice(0, 300)})`,
    });
    expect(fallback['code']).toBe('ENOSPC');
    expect(String(fallback['msg'])).toMatch(
      /local source "gts": change notifications off, out of inotify watches .*polling by schedule only/,
    );

    // Still polling: a file written now is taken by the schedule (every 1 s).
    await writeFile(path.join(incoming, 'd3', 'synop.bufr'), 'BUFR');
    const old = new Date(Date.now() - 3_600_000 + 60_000);
    await utimes(path.join(incoming, 'd3', 'synop.bufr'), old, old);
    await waitFor(() => readRecords(e.recordLog).length === 1, { timeoutMs: 10_000, what: 'file taken by schedule' });
    expect(readRecords(e.recordLog)[0]?.path).toBe('d3/synop.bufr');
    expect(child.exitCode).toBeNull();
    // One line for the outage, not one per retry or per directory.
    expect(lines.filter((l) => l['event'] === 'watch.fallback')).toHaveLength(1);
  });
});
