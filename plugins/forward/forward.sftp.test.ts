import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PermanentError } from '../../src/errors.js';
import { type SftpTestServer, startSftpServer } from '../../test/helpers/forward-sftp-server.js';
import { type PluginHarness, pluginHarness, waitFor } from '../../test/helpers/plugin-test-context.js';
import forward from './index.js';
import { openTarget } from './targets.js';

type Harness = PluginHarness<NonNullable<typeof forward.options>>;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(): Promise<SftpTestServer> {
  const s = await startSftpServer();
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

function sftpOptions(s: SftpTestServer, extra: Record<string, unknown> = {}) {
  return {
    url: `sftp://${s.user}@127.0.0.1:${s.port}/data/in`,
    password: s.password,
    hostKey: s.hostKeyFingerprint,
    retryDelay: 10,
    ...extra,
  };
}

describe('forward over SFTP', () => {
  it('uploads under a temporary name, renames it into place and makes the directories', async () => {
    const s = await server();
    const h = await plugin(sftpOptions(s, { tempSuffix: '.tmp' }));
    const content = Buffer.alloc(200_000, 3);
    await forward.process(await h.land('2026/11/23/vol.bufr', content), h.ctx);

    const final = '/data/in/2026/11/23/vol.bufr';
    expect(s.ops).toEqual([
      { op: 'write', path: `${final}.tmp` },
      { op: 'rename', from: `${final}.tmp`, to: final },
    ]);
    expect((await readFile(path.join(s.root, final))).equals(content)).toBe(true);
    expect(await readdir(path.join(s.root, 'data/in/2026/11/23'))).toEqual(['vol.bufr']);
    expect(h.emitted).toEqual([{ path: `sftp://127.0.0.1:${s.port}${final}`, kind: 'forward' }]);
  });

  it('replaces a remote file on a server that will not rename over it', async () => {
    const s = await server();
    await mkdir(path.join(s.root, 'data/in'), { recursive: true });
    await writeFile(path.join(s.root, 'data/in/same.bufr'), 'old');
    const h = await plugin(sftpOptions(s));
    await forward.process(await h.land('same.bufr', 'new'), h.ctx);

    expect(await readFile(path.join(s.root, 'data/in/same.bufr'), 'utf8')).toBe('new');
    expect(s.ops).toEqual([
      { op: 'write', path: '/data/in/same.bufr.part' },
      { op: 'rename', from: '/data/in/same.bufr.part', to: '/data/in/same.bufr' },
      { op: 'delete', path: '/data/in/same.bufr' },
      { op: 'rename', from: '/data/in/same.bufr.part', to: '/data/in/same.bufr' },
    ]);
  });

  it('retries on a new connection when the server drops it', async () => {
    const s = await server();
    const h = await plugin(sftpOptions(s));
    s.dropUploads(2);
    await forward.process(await h.land('r.bufr', 'retried'), h.ctx);
    expect(await readFile(path.join(s.root, 'data/in/r.bufr'), 'utf8')).toBe('retried');
    expect(h.lines.filter((l) => l['event'] === 'forward.retried')).toHaveLength(2);
  });

  it('gives up after the configured retries with a transient error', async () => {
    const s = await server();
    const h = await plugin(sftpOptions(s, { retries: 1 }));
    s.dropUploads(5);
    await expect(forward.process(await h.land('r.bufr', 'x'), h.ctx)).rejects.toMatchObject({
      code: 'FORWARD_CONNECTION_FAILED',
      retryable: true,
    });
    expect(s.ops.filter((o) => o.op === 'write')).toHaveLength(2);
  });

  it('logs in with a private key file', async () => {
    const s = await server();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'poller-forward-key-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const keyFile = path.join(dir, 'id_ed25519');
    await writeFile(keyFile, s.clientPrivateKey, { mode: 0o600 });
    const h = await plugin(sftpOptions(s, { password: undefined, privateKey: keyFile }));
    await forward.process(await h.land('k.bufr', 'by key'), h.ctx);
    expect(await readFile(path.join(s.root, 'data/in/k.bufr'), 'utf8')).toBe('by key');
  });

  it('refuses a server whose host key does not match', async () => {
    const s = await server();
    const h = await plugin(sftpOptions(s, { hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }), false);
    const err = await Promise.resolve(forward.process(await h.land('a.bufr', 'x'), h.ctx)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: 'FORWARD_HOST_KEY_MISMATCH' });
    expect((err as Error).message).toContain(s.hostKeyFingerprint);
    expect(s.ops).toEqual([]);
  });

  it('stops a hanging upload when the run is aborted', async () => {
    const s = await server();
    const h = await plugin(sftpOptions(s));
    s.stallWrites();
    const failure = Promise.resolve(forward.process(await h.land('a.bufr', 'x'), h.ctx)).catch((e: unknown) => e);
    await waitFor(() => s.ops.length > 0, { what: 'the upload to start' });
    h.controller.abort(new Error('shutdown'));
    expect(await failure).toMatchObject({ code: 'FORWARD_ABORTED', retryable: true });
    expect(s.ops).toEqual([{ op: 'write', path: '/data/in/a.bufr.part' }]);
  });

  it('gives up on a server that stops answering after the idle timeout', async () => {
    const s = await server();
    const h = await plugin(sftpOptions(s, { timeout: '300ms', retries: 0 }));
    s.stallWrites();
    await expect(forward.process(await h.land('a.bufr', 'x'), h.ctx)).rejects.toMatchObject({
      code: 'FORWARD_TIMEOUT',
      retryable: true,
    });
  });

  it('does not start when the run is already aborted', async () => {
    const s = await server();
    const h = await plugin(sftpOptions(s));
    h.controller.abort(new Error('shutdown'));
    await expect(forward.process(await h.land('a.bufr', 'x'), h.ctx)).rejects.toMatchObject({
      code: 'FORWARD_ABORTED',
    });
    expect(s.ops).toEqual([]);
  });

  it('treats deleting a file that is not there as done', async () => {
    const s = await server();
    const target = await openTarget(
      {
        protocol: 'sftp',
        host: '127.0.0.1',
        port: s.port,
        user: s.user,
        password: s.password,
        hostKey: s.hostKeyFingerprint,
        implicitTls: false,
        insecure: false,
        connectTimeoutMs: 10_000,
        idleTimeoutMs: 10_000,
      },
      new AbortController().signal,
    );
    cleanups.push(async () => target.close());
    await expect(target.remove('/no/such/file', new AbortController().signal)).resolves.toBeUndefined();
    expect(target.broken).toBe(false);
  });
});
