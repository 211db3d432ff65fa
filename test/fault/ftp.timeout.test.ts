import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { createFtpSource, type FtpSourceOptions } from '../../src/sources/ftp/ftp-source.js';
import type { Source } from '../../src/sources/source.js';
import { type FakeFtpServer, loginReplies, startFakeFtpServer } from '../helpers/fake-ftp-server.js';
import { ftpSourceOptions, startFtpServer, type TestFtpServer } from '../helpers/ftp-server.js';
import { createLogSink } from '../helpers/log-sink.js';

let fake: FakeFtpServer | undefined;
let server: TestFtpServer | undefined;
let source: Source | undefined;
afterEach(async () => {
  await source?.close();
  await fake?.close();
  await server?.close();
  fake = undefined;
  server = undefined;
  source = undefined;
});

function fakeOptions(port: number, overrides: Partial<FtpSourceOptions> = {}): FtpSourceOptions {
  return {
    name: 'stalling',
    protocol: 'ftp',
    host: '127.0.0.1',
    port,
    user: 'u',
    password: 'p',
    rootPath: '/',
    tls: { mode: 'none', insecure: false },
    timezone: 'UTC',
    maxConnections: 1,
    connectTimeoutMs: 300,
    dataTimeoutMs: 300,
    log: createLogSink().log,
    ...overrides,
  };
}

it('a server that accepts but never greets: the connect timeout fires, TransientError', async () => {
  fake = await startFakeFtpServer({ greeting: () => undefined });
  source = createFtpSource(fakeOptions(fake.port, { dataTimeoutMs: 60_000 }));
  const err = await source.list('', { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TransientError);
  expect(err).toMatchObject({ code: 'POLLER_FTP_TIMEOUT' });
  expect((err as Error).message).toContain('connectTimeoutMs');
});

it('a server that stops answering commands: the reply timeout fires, TransientError', async () => {
  fake = await startFakeFtpServer({
    reply: (command, arg, state) => (command === 'CWD' ? undefined : loginReplies(command, arg, state)),
  });
  source = createFtpSource(fakeOptions(fake.port));
  const err = await source.list('', { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TransientError);
  expect(err).toMatchObject({ code: 'POLLER_FTP_TIMEOUT' });
});

it('a transfer that stalls half way: the data timeout fires, TransientError, bytes so far kept', async () => {
  server = await startFtpServer({ faults: { stallDataAfterBytes: 100_000 } });
  await writeFile(path.join(server.root, 'slow.bin'), randomBytes(500_000));
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log, { dataTimeoutMs: 500 }));
  let received = 0;
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => {
    received += c.length;
  });
  const err = await source
    .download('slow.bin', sink, { offsetBytes: 0, signal: AbortSignal.timeout(20_000) })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TransientError);
  expect(err).toMatchObject({ code: 'POLLER_FTP_TIMEOUT' });
  expect(received).toBe(100_000);
});

it('aborting a download ends it with the abort reason and the source keeps working', async () => {
  server = await startFtpServer({ faults: { stallDataAfterBytes: 50_000 } });
  await writeFile(path.join(server.root, 'stuck.bin'), randomBytes(200_000));
  await writeFile(path.join(server.root, 'fine.txt'), 'fine');
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log, { dataTimeoutMs: 60_000 }));
  const controller = new AbortController();
  const sink = new PassThrough();
  sink.on('data', () => controller.abort(new Error('shutting down')));
  await expect(source.download('stuck.bin', sink, { offsetBytes: 0, signal: controller.signal })).rejects.toThrow(
    'shutting down',
  );
  const listing = await source.list('', { signal: AbortSignal.timeout(20_000) });
  expect(listing.map((e) => e.name).sort()).toEqual(['fine.txt', 'stuck.bin']);
});
