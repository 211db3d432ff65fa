import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { countBy, readRecords } from '../helpers/records.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

describe('several pollers on one ledger', () => {
  it('three run-once processes at the same time fetch and process each file exactly once', async () => {
    env = await startEngineEnv({ source: { concurrency: 3 } });
    const names = Array.from({ length: 30 }, (_, i) => `vol/${String(i).padStart(2, '0')}.bufr`);
    for (const n of names) await env.put(n, `content of ${n} `.repeat(200));
    const results = await Promise.all([
      env.cli(['run-once', '--json']),
      env.cli(['run-once', '--json']),
      env.cli(['run-once', '--json']),
    ]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const fetchedTotal = results
      .map((r) => JSON.parse(r.stdout).sources[0].fetched as number)
      .reduce((a, b) => a + b, 0);
    expect(fetchedTotal).toBe(30);
    const served = countBy(env.ftp.retrieved(), (p) => path.relative(env!.ftp.root, p));
    expect([...served.keys()].sort()).toEqual(names);
    expect([...served.values()].every((n) => n === 1)).toBe(true);
    const processed = countBy(readRecords(env.recordLog), (r) => r.path);
    expect(processed.size).toBe(30);
    expect([...processed.values()].every((n) => n === 1)).toBe(true);
  });
});
