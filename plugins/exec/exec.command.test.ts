import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pluginHarness } from '../../test/helpers/plugin-test-context.js';
import exec, { quoteForShell } from './index.js';

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

describe('exec plugin', () => {
  it('runs an argv command with the placeholders substituted and logs its output', async () => {
    const script = `
      const fs = require('node:fs');
      fs.writeFileSync('args.json', JSON.stringify({ args: process.argv.slice(1), env: process.env.POLLER_REMOTE_PATH, extra: process.env.STATION }));
      console.log('converted ' + process.argv[2]);`;
    const h = await harness({
      command: [NODE, '-e', script, '{path}', '{source}', '{remotePath}', '{name}'],
      env: { STATION: 'st-{name}' },
    });
    const file = await h.land('2026/11/23/T_PAGB41.bufr', 'BUFR');
    await exec.process(file, h.ctx);

    const seen = JSON.parse(await readFile(path.join(h.ctx.stateDir, 'args.json'), 'utf8'));
    expect(seen).toEqual({
      args: [file.localPath, 'radar-test', '2026/11/23/T_PAGB41.bufr', 'T_PAGB41.bufr'],
      env: '2026/11/23/T_PAGB41.bufr',
      extra: 'st-T_PAGB41.bufr',
    });
    expect(h.lines).toContainEqual(
      expect.objectContaining({ event: 'exec.output', stream: 'stdout', line: 'converted radar-test' }),
    );
    expect(h.lines).toContainEqual(expect.objectContaining({ event: 'exec.finished', exitCode: 0 }));
  });

  it('never lets a remote file name reach the shell as syntax', async () => {
    const h = await harness({ shell: true, command: 'printf "%s\\n" {name} > names.txt' });
    const evil = "a'b $(touch pwned) `id`; rm -rf x.bufr";
    await exec.process(await h.land(`in/${evil}`, 'x'), h.ctx);
    expect(await readFile(path.join(h.ctx.stateDir, 'names.txt'), 'utf8')).toBe(`${evil}\n`);
    await expect(readFile(path.join(h.ctx.stateDir, 'pwned'))).rejects.toThrow();
  });

  it('feeds the file to stdin with stdin: file (pqact PIPE)', async () => {
    const h = await harness({
      command: [NODE, '-e', "process.stdin.pipe(require('node:fs').createWriteStream('copy.bin'))"],
      stdin: 'file',
    });
    const content = Buffer.alloc(300_000, 7);
    await exec.process(await h.land('vol.bufr', content), h.ctx);
    expect((await readFile(path.join(h.ctx.stateDir, 'copy.bin'))).equals(content)).toBe(true);
  });

  it('bounds the output lines it logs', async () => {
    const h = await harness({
      command: [NODE, '-e', 'for (let i = 0; i < 200; i++) console.log("line " + i)'],
      maxLogLines: 10,
    });
    await exec.process(await h.land('a.bufr', 'x'), h.ctx);
    expect(h.lines.filter((l) => l['event'] === 'exec.output')).toHaveLength(10);
    expect(h.lines).toContainEqual(
      expect.objectContaining({ event: 'exec.output_truncated', droppedLines: { stdout: 190, stderr: 0 } }),
    );
  });

  it('rejects a command string without shell: true, by path', () => {
    const result = exec.options?.safeParse({ command: 'gzip {path}' });
    expect(result?.success).toBe(false);
    expect(result?.error?.issues[0]?.path).toEqual(['command']);
    expect(exec.options?.safeParse({ command: ['gzip', '{path}'], timeout: '30s' })?.data).toMatchObject({
      timeout: 30_000,
      shell: false,
    });
  });

  it('quotes for the shell', () => {
    expect(quoteForShell("it's")).toBe("'it'\\''s'");
  });
});
