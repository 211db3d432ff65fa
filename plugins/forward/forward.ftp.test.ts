import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PermanentError } from '../../src/errors.js';
import { type FtpTestServer, startFtpServer } from '../../test/helpers/forward-ftp-server.js';
import { type PluginHarness, pluginHarness, waitFor } from '../../test/helpers/plugin-test-context.js';
import forward from './index.js';

type Harness = PluginHarness<NonNullable<typeof forward.options>>;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  // Tear down in reverse: plugin (closes its pool) before the server it talks to.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(tls = false): Promise<FtpTestServer> {
  const s = await startFtpServer({ tls });
  cleanups.push(s.close);
  return s;
}

async function plugin(options: Record<string, unknown>, withSetup = true): Promise<Harness> {
  const h = await pluginHarness(forward, options);
  cleanups.push(h.cleanup);
  if (withSetup) {
    await forward.setup?.(h.ctx);
    cleanups.push(async () => {
      await forward.teardown?.(h.ctx);
    });
  }
  return h;
}

async function tmpDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'poller-forward-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function ftpOptions(s: FtpTestServer, extra: Record<string, unknown> = {}) {
  return { url: `ftp://${s.user}@127.0.0.1:${s.port}/incoming`, password: s.password, retryDelay: 10, ...extra };
}

describe('forward over FTP', () => {
  it('uploads under a temporary name, renames it into place and makes the directories', async () => {
    const s = await server();
    const h = await plugin(ftpOptions(s));
    const file = await h.land('2026/11/23/T_PAGB41.bufr', 'BUFR radar volume');
    await forward.process(file, h.ctx);

    const final = '/incoming/2026/11/23/T_PAGB41.bufr';
    expect(s.ops).toEqual([
      { op: 'write', path: `${final}.part` },
      { op: 'rename', from: `${final}.part`, to: final },
    ]);
    expect(await readFile(path.join(s.root, final), 'utf8')).toBe('BUFR radar volume');
    expect(await readdir(path.join(s.root, 'incoming/2026/11/23'))).toEqual(['T_PAGB41.bufr']);
    expect(h.emitted).toEqual([{ path: `ftp://127.0.0.1:${s.port}${final}`, kind: 'forward' }]);
    expect(h.lines).toContainEqual(expect.objectContaining({ event: 'forward.uploaded', attempt: 1 }));
    expect(JSON.stringify(h.lines)).not.toContain(s.password);
  });

  it('keeps at most `concurrency` connections across many files', async () => {
    const s = await server();
    const h = await plugin(ftpOptions(s, { concurrency: 2, dir: '{source}/{YYYY}{MM}{DD}' }));
    const files = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => h.land(`x/${n}.bufr`, n)));
    await Promise.all(files.map((f) => forward.process(f, h.ctx)));
    expect(s.logins).toBeLessThanOrEqual(2);
    expect((await readdir(path.join(s.root, 'incoming/radar-test/20261123'))).sort()).toEqual([
      'a.bufr',
      'b.bufr',
      'c.bufr',
      'd.bufr',
      'e.bufr',
    ]);
  });

  it('retries on a new connection when the connection drops mid-upload', async () => {
    const s = await server();
    const h = await plugin(ftpOptions(s));
    s.dropUploads(1);
    await forward.process(await h.land('vol.bufr', 'payload'), h.ctx);
    expect(await readFile(path.join(s.root, 'incoming/vol.bufr'), 'utf8')).toBe('payload');
    expect(h.lines).toContainEqual(expect.objectContaining({ event: 'forward.retried', attempt: 1 }));
    expect(s.logins).toBe(2);
  });

  it('stops a hanging upload when the run is aborted, and times out without an abort', async () => {
    const s = await server();
    const h = await plugin(ftpOptions(s, { timeout: '500ms', retries: 0 }));
    s.stallWrites();
    const failure = Promise.resolve(forward.process(await h.land('a.bufr', 'x'), h.ctx)).catch((e: unknown) => e);
    await waitFor(() => s.ops.length > 0, { what: 'the upload to start' });
    h.controller.abort(new Error('shutdown'));
    expect(await failure).toMatchObject({ code: 'FORWARD_ABORTED', retryable: true });

    const idle = await plugin(ftpOptions(s, { timeout: '300ms', retries: 0 }));
    await expect(forward.process(await idle.land('b.bufr', 'x'), idle.ctx)).rejects.toMatchObject({
      code: 'FORWARD_TIMEOUT',
      retryable: true,
    });
  });

  it('replaces, skips or refuses an existing remote file as configured', async () => {
    const s = await server();
    const skip = await plugin(ftpOptions(s, { overwrite: 'skip' }));
    await forward.process(await skip.land('same.bufr', 'first'), skip.ctx);
    await forward.process(await skip.land('same.bufr', 'second'), skip.ctx);
    expect(await readFile(path.join(s.root, 'incoming/same.bufr'), 'utf8')).toBe('first');

    const fail = await plugin(ftpOptions(s, { overwrite: 'fail' }));
    await expect(forward.process(await fail.land('same.bufr', 'third'), fail.ctx)).rejects.toMatchObject({
      code: 'FORWARD_TARGET_EXISTS',
    });

    const replace = await plugin(ftpOptions(s));
    await forward.process(await replace.land('same.bufr', 'fourth'), replace.ctx);
    expect(await readFile(path.join(s.root, 'incoming/same.bufr'), 'utf8')).toBe('fourth');
  });

  it('fails permanently, without retries, on a rejected login', async () => {
    const s = await server();
    const h = await plugin(ftpOptions(s, { password: 'wrong' }), false);
    const err = await Promise.resolve(forward.process(await h.land('a.bufr', 'x'), h.ctx)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: 'FORWARD_LOGIN_REJECTED' });
    expect(h.lines.filter((l) => l['event'] === 'forward.retried')).toEqual([]);
  });

  it('reads the password from passwordFile', async () => {
    const s = await server();
    const secret = path.join(await tmpDir(), 'forward-password');
    await writeFile(secret, `${s.password}\n`);
    const h = await plugin({ ...ftpOptions(s), password: undefined, passwordFile: secret });
    await forward.process(await h.land('p.bufr', 'x'), h.ctx);
    expect(await readFile(path.join(s.root, 'incoming/p.bufr'), 'utf8')).toBe('x');
  });
});

describe('forward over FTPS', () => {
  it('verifies the server certificate against ca', async () => {
    const s = await server(true);
    const caFile = path.join(await tmpDir(), 'ca.pem');
    await writeFile(caFile, s.certPem ?? '');
    const trusted = await plugin({ url: `ftps://${s.user}@127.0.0.1:${s.port}/`, password: s.password, ca: caFile });
    await forward.process(await trusted.land('tls.bufr', 'secret radar'), trusted.ctx);
    expect(await readFile(path.join(s.root, 'tls.bufr'), 'utf8')).toBe('secret radar');

    const untrusted = await plugin({ url: `ftps://${s.user}@127.0.0.1:${s.port}/`, password: s.password }, false);
    await expect(forward.process(await untrusted.land('tls.bufr', 'x'), untrusted.ctx)).rejects.toMatchObject({
      code: 'FORWARD_TLS_FAILED',
    });
  });
});

describe('forward options', () => {
  it('rejects a password in the URL, an unknown scheme and sftp without hostKey, by path', () => {
    const issues = (o: unknown) =>
      forward.options?.safeParse(o).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ url: 'ftp://u:pw@h/x' })).toEqual([
      'url: remove the password from the URL; use password or passwordFile',
    ]);
    expect(issues({ url: 'http://u@h/x' })?.[0]).toMatch(/^url: scheme "http" is not supported/);
    expect(issues({ url: 'sftp://u@h/x' })?.[0]).toMatch(/^hostKey: required for sftp/);
    expect(issues({ url: 'ftp://u@h/x', password: 'a', passwordFile: '/b' })?.[0]).toMatch(/^passwordFile:/);
  });
});
