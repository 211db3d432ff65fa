import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { createSftpSource } from '../../src/sources/sftp/sftp-source.js';
import type { Source, SourceConnectOptions } from '../../src/sources/source.js';
import { type SftpTestServer, startSftpServer } from '../helpers/sftp-server.js';
import { collectingLogger, downloadToFile, sftpConnectOptions } from '../helpers/source-test-utils.js';

let server: SftpTestServer;
let tmp: string;
let data: Buffer;
const sources: Source[] = [];

function source(over: Partial<SourceConnectOptions> = {}): Source {
  const s = createSftpSource(
    sftpConnectOptions({
      port: server.port,
      user: server.user,
      password: server.password,
      rootPath: '/',
      hostKey: server.hostKeyFingerprint,
      log: collectingLogger().log,
      ...over,
    }),
  );
  sources.push(s);
  return s;
}

/** Asserts the partial file is a prefix of the original, then resumes it and checks the whole. */
async function resumeAndCheck(s: Source, partial: string): Promise<number> {
  const got = await fs.readFile(partial);
  expect(got.length).toBeLessThan(data.length);
  expect(got.equals(data.subarray(0, got.length))).toBe(true);
  await downloadToFile(s, 'radar.bin', partial, { offsetBytes: got.length });
  expect((await fs.readFile(partial)).equals(data)).toBe(true);
  return got.length;
}

beforeAll(async () => {
  server = await startSftpServer();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'poller-sftp-fault-'));
  data = randomBytes(6 * 1024 * 1024 + 777);
  await fs.writeFile(path.join(server.root, 'radar.bin'), data);
});

afterAll(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await server?.close();
  if (tmp !== undefined) await fs.rm(tmp, { recursive: true, force: true });
});

describe('sftp source when the connection fails mid-transfer', () => {
  it('a dropped connection leaves a correct prefix, and a download from its size completes the file', async () => {
    const s = source();
    const partial = path.join(tmp, 'dropped.partial');
    server.dropAfterBytes(2 * 1024 * 1024);
    const err = await downloadToFile(s, 'radar.bin', partial, { offsetBytes: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'POLLER_SFTP_CONNECTION_LOST' });
    const resumedFrom = await resumeAndCheck(s, partial);
    expect(resumedFrom).toBeGreaterThan(0);
  });

  it('a server that stops answering fails with a timeout, and the retry resumes', async () => {
    const s = source({ dataTimeoutMs: 500 });
    const partial = path.join(tmp, 'stalled.partial');
    server.stallAfterBytes(1024 * 1024);
    const err = await downloadToFile(s, 'radar.bin', partial, { offsetBytes: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransientError);
    expect(err).toMatchObject({ code: 'POLLER_SFTP_TIMEOUT' });
    await resumeAndCheck(s, partial);
  });

  it('a pooled connection cut while idle is replaced on the next listing', async () => {
    const s = source();
    expect((await s.list('', { signal: new AbortController().signal })).length).toBe(1);
    const before = server.connections;
    server.dropConnections();
    expect((await s.list('', { signal: new AbortController().signal })).length).toBe(1);
    expect(server.connections).toBe(before + 1);
  });

  it('an abort mid-transfer rejects with the reason and leaves a correct prefix', async () => {
    const s = source();
    const partial = path.join(tmp, 'aborted.partial');
    const controller = new AbortController();
    const reason = new Error('shutdown');
    let seen = 0;
    const err = await downloadToFile(s, 'radar.bin', partial, {
      offsetBytes: 0,
      signal: controller.signal,
      onBytes: (n) => {
        seen += n;
        if (seen >= 1024 * 1024) controller.abort(reason);
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBe(reason);
    await resumeAndCheck(s, partial);
  });
});
