import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PermanentError, TransientError } from '../../src/errors.js';
import { isAlive, pluginHarness, waitFor } from '../../test/helpers/plugin-test-context.js';
import exec, { ExecExitError } from './index.js';

const NODE = process.execPath;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function harness(options: unknown) {
  const h = await pluginHarness(exec, options);
  cleanups.push(h.cleanup);
  return h;
}

// A command that starts a grandchild, records both pids, then hangs; both ignore nothing.
const HANG = `
  const { spawn } = require('node:child_process');
  const fs = require('node:fs');
  const grandchild = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  fs.writeFileSync('pids.tmp', JSON.stringify([process.pid, grandchild.pid]));
  fs.renameSync('pids.tmp', 'pids.json');
  setInterval(() => {}, 1000);`;

async function run(h: Awaited<ReturnType<typeof harness>>): Promise<void> {
  await exec.process(await h.land('a.bufr', 'x'), h.ctx);
}

async function readPids(stateDir: string): Promise<number[]> {
  const file = path.join(stateDir, 'pids.json');
  await waitFor(
    () =>
      readFile(file).then(
        () => true,
        () => false,
      ),
    { what: 'the command to start' },
  );
  return JSON.parse(await readFile(file, 'utf8')) as number[];
}

describe('exec plugin failures', () => {
  it('fails with the exit code and the last stderr lines', async () => {
    const h = await harness({
      command: [NODE, '-e', 'for (let i = 1; i <= 8; i++) console.error("problem " + i); process.exit(3)'],
    });
    const err = await run(h).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExecExitError);
    expect(err).toBeInstanceOf(TransientError);
    const exit = err as ExecExitError;
    expect(exit.code).toBe('EXEC_EXIT_NONZERO');
    expect(exit.exitCode).toBe(3);
    expect(exit.stderrTail).toEqual(['problem 4', 'problem 5', 'problem 6', 'problem 7', 'problem 8']);
    expect(exit.message).toContain('exited with code 3');
    expect(exit.message).toContain('problem 8');
    expect(exit.message).not.toContain('\n');
    expect(h.lines).toContainEqual(expect.objectContaining({ stream: 'stderr', line: 'problem 1' }));
  });

  it('fails permanently for an exit code listed in permanentExitCodes', async () => {
    const h = await harness({ command: [NODE, '-e', 'process.exit(65)'], permanentExitCodes: [65] });
    await expect(run(h)).rejects.toMatchObject({
      code: 'EXEC_EXIT_PERMANENT',
      exitCode: 65,
    });
  });

  it('fails permanently when the program does not exist', async () => {
    const h = await harness({ command: ['/nonexistent/convert', '{path}'] });
    const err = await run(h).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: 'EXEC_NOT_FOUND' });
  });

  it('fails permanently when cwd is not a directory', async () => {
    const h = await harness({ command: [NODE, '-e', ''], cwd: '/nonexistent/dir' });
    await expect(run(h)).rejects.toMatchObject({ code: 'EXEC_BAD_CWD', retryable: false });
  });

  it('kills a hanging command and its children when the run is aborted', async () => {
    const h = await harness({ command: [NODE, '-e', HANG], killGrace: '2s' });
    const failure = run(h).catch((e: unknown) => e);
    const pids = await readPids(h.ctx.stateDir);
    expect(pids.every(isAlive)).toBe(true);

    h.controller.abort(new Error('shutdown'));
    const err = await failure;
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'EXEC_ABORTED' });
    await waitFor(() => !pids.some(isAlive), { what: 'the process group to die' });
  });

  it('kills a command that outlives its timeout', async () => {
    const h = await harness({ command: [NODE, '-e', HANG], timeout: '2s' });
    const err = await run(h).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EXEC_TIMEOUT' });
    // On a loaded machine the timeout may strike before the command wrote its pids.
    const pids = await readFile(path.join(h.ctx.stateDir, 'pids.json'), 'utf8').then(
      (text) => JSON.parse(text) as number[],
      () => [],
    );
    await waitFor(() => !pids.some(isAlive), { what: 'the process group to die' });
  });

  it('escalates to SIGKILL when the command ignores SIGTERM', async () => {
    const h = await harness({
      command: [NODE, '-e', `process.on('SIGTERM', () => {}); ${HANG}`],
      killGrace: 200,
    });
    const failure = run(h).catch((e: unknown) => e);
    const pids = await readPids(h.ctx.stateDir);
    h.controller.abort();
    expect(await failure).toMatchObject({ code: 'EXEC_ABORTED' });
    await waitFor(() => !pids.some(isAlive), { what: 'the process group to die' });
  });
});
