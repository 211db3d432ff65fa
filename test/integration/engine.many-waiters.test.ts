import { afterEach, describe, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

describe('many transfers waiting for few connections', () => {
  it('fetch every file without a listener-leak warning', async () => {
    env = await startEngineEnv({ source: { concurrency: 16, maxConnections: 2 } });
    for (let i = 0; i < 40; i++) await env.put(`w/${i}.bufr`, `file ${i}`);
    const r = await env.cli(['run-once', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).sources[0]).toMatchObject({ fetched: 40, processed: 40 });
    expect(r.stderr).not.toMatch(/MaxListenersExceeded/);
  });
});
