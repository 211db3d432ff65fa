import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

describe('after: remote actions once a file is processed', () => {
  it('after: delete removes the remote file only after its plugins succeeded', async () => {
    env = await startEngineEnv({ source: { after: 'delete' } });
    await env.put('a.bufr', 'aaa');
    const s = await env.cycle();
    expect(s).toMatchObject({ fetched: 1, processed: 1 });
    expect(existsSync(path.join(env.ftp.root, 'a.bufr'))).toBe(false);
    expect(readFileSync(path.join(env.landing, 'radar', 'a.bufr'), 'utf8')).toBe('aaa');
    expect(await env.cycle()).toMatchObject({ listed: 0, fetched: 0 });
  });

  it('a file whose plugin failed stays on the server', async () => {
    env = await startEngineEnv({
      source: { after: 'delete' },
      plugins: [{ use: path.join(FIXTURE_PLUGINS, 'throws.mjs') }],
    });
    await env.put('b.bufr', 'bbb');
    expect(await env.cycle()).toMatchObject({ fetched: 1, failed: 1 });
    expect(existsSync(path.join(env.ftp.root, 'b.bufr'))).toBe(true);
  });

  it('after: { move } moves it into the directory, which is never polled as new files', async () => {
    env = await startEngineEnv({ source: { after: { move: 'done/' } } });
    mkdirSync(path.join(env.ftp.root, 'done'));
    await env.put('in/c.bufr', 'ccc');
    expect(await env.cycle()).toMatchObject({ fetched: 1, processed: 1 });
    expect(existsSync(path.join(env.ftp.root, 'in', 'c.bufr'))).toBe(false);
    expect(readFileSync(path.join(env.ftp.root, 'done', 'c.bufr'), 'utf8')).toBe('ccc');
    expect(await env.cycle()).toMatchObject({ listed: 0, fetched: 0 });
  });
});
