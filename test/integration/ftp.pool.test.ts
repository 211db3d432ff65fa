import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { PermanentError } from '../../src/errors.js';
import { createFtpSource } from '../../src/sources/ftp/ftp-source.js';
import type { Source } from '../../src/sources/source.js';
import { ftpSourceOptions, startFtpServer, type TestFtpServer } from '../helpers/ftp-server.js';
import { createLogSink } from '../helpers/log-sink.js';
import { waitFor } from '../helpers/wait-for.js';

let server: TestFtpServer | undefined;
let source: Source | undefined;
afterEach(async () => {
  await source?.close();
  await server?.close();
});

const signal = (): AbortSignal => AbortSignal.timeout(20_000);

it('reuses one connection for sequential operations', async () => {
  server = await startFtpServer();
  await writeFile(path.join(server.root, 'a.txt'), 'a');
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  for (let i = 0; i < 5; i++) {
    await source.list('', { signal: signal() });
    await source.download('a.txt', new PassThrough().resume(), { offsetBytes: 0, signal: signal() });
  }
  expect(server.totalConnections()).toBe(1);
});

it('keeps the connection after a 550 (an FTP error leaves it usable)', async () => {
  server = await startFtpServer();
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  await expect(source.list('missing', { signal: signal() })).rejects.toBeInstanceOf(PermanentError);
  await source.list('', { signal: signal() });
  expect(server.totalConnections()).toBe(1);
});

it('opens at most maxConnections for parallel work', async () => {
  server = await startFtpServer();
  await writeFile(path.join(server.root, 'b.bin'), Buffer.alloc(200_000));
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log, { maxConnections: 3 }));
  await Promise.all(
    Array.from({ length: 9 }, () =>
      source?.download('b.bin', new PassThrough().resume(), { offsetBytes: 0, signal: signal() }),
    ),
  );
  expect(server.totalConnections()).toBe(3);
  expect(server.maxOpenConnections()).toBe(3);
});

it('replaces a connection the server dropped while it was idle (NOOP check)', async () => {
  server = await startFtpServer();
  await writeFile(path.join(server.root, 'c.txt'), 'c');
  const sink = createLogSink();
  source = createFtpSource(ftpSourceOptions(server, sink.log, { noopAfterIdleMs: 0 }));
  await source.list('', { signal: signal() });
  await server.dropControlConnections();
  await waitFor(() => server?.openConnections() === 0);
  const listing = await source.list('', { signal: signal() });
  expect(listing.map((e) => e.name)).toEqual(['c.txt']);
  expect(server.totalConnections()).toBe(2);
});

it('closes idle connections after idleCloseMs', async () => {
  server = await startFtpServer();
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log, { idleCloseMs: 50 }));
  await source.list('', { signal: signal() });
  await waitFor(() => server?.openConnections() === 0, { what: 'idle connection closed' });
});

it('close() ends every connection and later calls fail without hanging', async () => {
  server = await startFtpServer();
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  await source.list('', { signal: signal() });
  await source.close();
  await waitFor(() => server?.openConnections() === 0);
  await expect(source.list('', { signal: signal() })).rejects.toMatchObject({ code: 'POLLER_FTP_SOURCE_CLOSED' });
});

it('applies the source timezone to LIST times', async () => {
  server = await startFtpServer();
  const file = path.join(server.root, 'tz.txt');
  await writeFile(file, 'tz');
  const utcSource = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  // ftp-srv writes LIST times in UTC; reading them as Tokyo time moves them 9 hours earlier.
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log, { timezone: 'Asia/Tokyo' }));
  try {
    const [asUtc] = await utcSource.list('', { signal: signal() });
    const [asTokyo] = await source.list('', { signal: signal() });
    expect((asUtc?.mtimeMs ?? 0) - (asTokyo?.mtimeMs ?? 0)).toBe(9 * 3_600_000);
  } finally {
    await utcSource.close();
  }
});

it('rejects paths that leave the root without asking the server', async () => {
  server = await startFtpServer();
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  await expect(
    source.download('../etc/passwd', new PassThrough(), { offsetBytes: 0, signal: signal() }),
  ).rejects.toMatchObject({ code: 'POLLER_FTP_PATH_INVALID' });
  expect(server.totalConnections()).toBe(0);
});

it('remove and rename work on the server', async () => {
  server = await startFtpServer();
  await writeFile(path.join(server.root, 'd.txt'), 'd');
  await writeFile(path.join(server.root, 'e.txt'), 'e');
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  await source.remove?.('d.txt', { signal: signal() });
  await source.rename?.('e.txt', 'f.txt', { signal: signal() });
  const names = (await source.list('', { signal: signal() })).map((e) => e.name);
  expect(names).toEqual(['f.txt']);
});

it('caps the bytes of one listing: PermanentError, and the source recovers for smaller ones', async () => {
  server = await startFtpServer();
  const { mkdir } = await import('node:fs/promises');
  await mkdir(path.join(server.root, 'big'));
  await mkdir(path.join(server.root, 'small'));
  await Promise.all(
    Array.from({ length: 50 }, (_, i) => writeFile(path.join(server?.root ?? '', 'big', `file-${i}.bufr`), 'x')),
  );
  await writeFile(path.join(server.root, 'small', 'one'), 'x');
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log, { maxListingBytes: 1024 }));
  await expect(source.list('big', { signal: signal() })).rejects.toMatchObject({
    code: 'POLLER_FTP_LISTING_TOO_LARGE',
    retryable: false,
  });
  const small = await source.list('small', { signal: signal() });
  expect(small.map((e) => e.path)).toEqual(['small/one']);
});

it('logs in anonymously when the server allows it and no password is configured', async () => {
  server = await startFtpServer({ anonymous: true });
  await writeFile(path.join(server.root, 'public.txt'), 'p');
  const { password: _unused, ...withoutPassword } = ftpSourceOptions(server, createLogSink().log, {
    user: 'anonymous',
  });
  source = createFtpSource(withoutPassword);
  const listing = await source.list('', { signal: signal() });
  expect(listing.map((e) => e.name)).toEqual(['public.txt']);
});
