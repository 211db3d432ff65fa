/**
 * run-once draws its progress display on a terminal (here a pseudo-terminal made by util-linux
 * `script`) and prints only the summary when stdout is a pipe.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type EngineEnv, REPO_ROOT, startEngineEnv } from '../helpers/engine-env.js';

const hasScript = spawnSync('script', ['--version']).status === 0;

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

function runInTerminal(e: EngineEnv, args: string[]): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, path.join(REPO_ROOT, 'bin', 'poller.js'), ...args, '--config', e.configPath]
    .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
    .join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      env: { ...process.env, TEST_FTP_PASSWORD: e.ftp.password, COLUMNS: '120' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('run-once progress display', () => {
  it.skipIf(!hasScript)('shows files, bytes and rate per source on a terminal', async () => {
    env = await startEngineEnv();
    for (let i = 0; i < 3; i++) await env.put(`p/${i}.bufr`, Buffer.alloc(10_000, i));
    const r = await runInTerminal(env, ['run-once']);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('\x1b[2K');
    expect(r.output).toMatch(/radar {2}3\/3 files {2}29\.3 KiB\/29\.3 KiB .* done/);
    // The summary table follows the display.
    expect(r.output).toMatch(/source\s+listed\s+new\s+fetched/);
  });

  it('prints only the summary when stdout is not a terminal', async () => {
    env = await startEngineEnv();
    await env.put('p/0.bufr', 'x');
    const r = await env.cli(['run-once']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('\x1b[');
    expect(r.stdout).toMatch(/^source\s+listed/);
  });
});
