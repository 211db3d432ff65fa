import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import pLimit from 'p-limit';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { runCycle } from '../../src/engine/cycle.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import { PluginRunner } from '../../src/plugins/runner.js';
import type { RemoteEntry, Source } from '../../src/sources/source.js';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { createLogSink } from '../helpers/log-sink.js';
import { makeTmpDir } from '../helpers/tmp-dir.js';

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

/**
 * A scripted listing: names no real filesystem behind a server can hold (`..`, absolute paths,
 * NUL) but a broken or hostile server can send.
 */
function scriptedSource(names: string[], content = 'payload'): Source {
  const entries: RemoteEntry[] = names.map((p) => ({
    path: p,
    name: p.split('/').pop() ?? p,
    type: 'file',
    sizeBytes: content.length,
    mtimeMs: Date.now() - 3_600_000,
    mtimePrecision: 's',
  }));
  return {
    displayUrl: 'scripted://',
    async list(dir) {
      return dir === '' ? entries : [];
    },
    async download(_p: string, to: Writable) {
      await new Promise<void>((resolve, reject) => to.write(content, (err) => (err ? reject(err) : resolve())));
    },
    async close() {},
  };
}

describe('hostile remote names', () => {
  it('names with .., absolute paths, NUL, backslashes or control characters never land outside the landing root', async () => {
    const tmp = await makeTmpDir('poller-hostile-');
    const config = buildConfig(
      { landing: './landing', ledger: './ledger.db', sources: [{ name: 'evil', url: 'ftp://h/', include: ['**'] }] },
      tmp.path,
      {},
    );
    const ledger = new SqliteLedger(config.ledger);
    const sink = createLogSink('info');
    const runner = new PluginRunner({
      plugins: [],
      log: sink.log,
      stateDir: config.stateDir,
      shutdownSignal: new AbortController().signal,
    });
    const hostile = [
      '../escape.bufr',
      '../../etc/passwd',
      '/etc/shadow',
      'a/../../b.bufr',
      'nul\0.bufr',
      'back\\..\\slash.bufr',
      'x\ny.bufr',
    ];
    const summary = await runCycle(
      config.sources[0]!,
      scriptedSource([...hostile, 'good/ok.bufr']),
      {
        ledger,
        runner,
        log: sink.log,
        owner: 'test',
        landingRoot: config.landing,
        transferLimit: pLimit(4),
        retryBaseMs: 10,
        retryMaxMs: 10,
      },
      { signal: new AbortController().signal, settleWithinCycle: false },
    );
    expect(summary).toMatchObject({ listed: 8, rejected: hostile.length, fetched: 1 });
    const landed = await allFiles(tmp.path);
    expect(landed.filter((f) => !f.endsWith('ledger.db') && !f.includes('ledger.db-'))).toEqual([
      path.join(config.landing, 'evil', 'good', 'ok.bufr'),
    ]);
    const rejected = await ledger.files({ state: 'rejected' });
    expect(rejected).toHaveLength(hostile.length);
    for (const r of rejected) expect(r.lastError).toMatch(/\.\.|absolute|NUL|backslash|control/);
    await ledger.close();
    await tmp.remove();
  });

  it('a real server: backslashes, spaces and non-ASCII names are handled; nothing escapes', async () => {
    env = await startEngineEnv({ source: { include: ['**'] } });
    await env.put('back\\slash.bufr', 'b');
    await env.put('données été/radar 1.bufr', 'r');
    const s = await env.cycle();
    expect(s).toMatchObject({ rejected: 1, fetched: 1 });
    expect(await readFile(path.join(env.landing, 'radar', 'données été', 'radar 1.bufr'), 'utf8')).toBe('r');
    expect(existsSync(path.join(env.landing, 'radar', 'back\\slash.bufr'))).toBe(false);
    const why = await env.cli(['why', 'back\\slash.bufr']);
    expect(why.stdout).toContain('rejected: name contains a backslash; it is never fetched');
  });
});
