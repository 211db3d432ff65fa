import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { ThrottledError } from '../../src/errors.js';
import { createFtpSource, createHostBudget } from '../../src/sources/ftp/ftp-source.js';
import type { Source } from '../../src/sources/source.js';
import { type GateProxy, startGateProxy } from '../helpers/fake-ftp-server.js';
import { ftpSourceOptions, startFtpServer, type TestFtpServer } from '../helpers/ftp-server.js';
import { createLogSink } from '../helpers/log-sink.js';

let server: TestFtpServer | undefined;
let proxy: GateProxy | undefined;
const sources: Source[] = [];
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
  await proxy?.close();
  await server?.close();
});

async function fetchLength(src: Source, remotePath: string): Promise<number> {
  let n = 0;
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => {
    n += c.length;
  });
  await src.download(remotePath, sink, { offsetBytes: 0, signal: AbortSignal.timeout(20_000) });
  return n;
}

it('treats 421 on connect as throttling: backs off, then succeeds', async () => {
  server = await startFtpServer();
  await writeFile(path.join(server.root, 'a.bufr'), 'radar');
  proxy = await startGateProxy(server.port, (connection) => connection <= 2);
  const sink = createLogSink();
  const source = createFtpSource({
    ...ftpSourceOptions(server, sink.log, { throttleBackoffMs: 20 }),
    port: proxy.port,
  });
  sources.push(source);
  const listing = await source.list('', { signal: AbortSignal.timeout(20_000) });
  expect(listing.map((e) => e.name)).toEqual(['a.bufr']);
  expect(proxy.refused()).toBe(2);
  const throttled = sink.events('source.throttled');
  expect(throttled).toHaveLength(2);
  expect(throttled[0]).toMatchObject({ level: 40, source: 'test-ftp' });
});

it('fails with ThrottledError only after the bounded number of 421 replies', async () => {
  server = await startFtpServer();
  proxy = await startGateProxy(server.port, () => true);
  const source = createFtpSource({
    ...ftpSourceOptions(server, createLogSink().log, { throttleBackoffMs: 5, throttleAttempts: 3 }),
    port: proxy.port,
  });
  sources.push(source);
  const err = await source.list('', { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ThrottledError);
  expect(err).toMatchObject({ code: 'POLLER_FTP_THROTTLED', retryable: true });
  expect(proxy.refused()).toBe(3);
});

it('shrinks to the connections the server accepts and finishes every transfer', async () => {
  server = await startFtpServer();
  await writeFile(path.join(server.root, 'b.bin'), Buffer.alloc(300_000, 2));
  // The server takes two connections at a time; the source would like four.
  proxy = await startGateProxy(server.port, (_connection, open) => open >= 2);
  const sink = createLogSink();
  const source = createFtpSource({
    ...ftpSourceOptions(server, sink.log, { maxConnections: 4, throttleBackoffMs: 20 }),
    port: proxy.port,
  });
  sources.push(source);
  const sizes = await Promise.all(Array.from({ length: 8 }, () => fetchLength(source, 'b.bin')));
  expect(sizes).toEqual(Array.from({ length: 8 }, () => 300_000));
  expect(sink.events('source.throttled').length).toBeGreaterThan(0);
  // After the first refusals the pool stays at two connections instead of knocking per transfer.
  expect(proxy.refused()).toBeLessThan(8);
});

it('shares one host budget between sources on the same server', async () => {
  server = await startFtpServer();
  await writeFile(path.join(server.root, 'c.bin'), Buffer.alloc(200_000, 3));
  const hostBudget = createHostBudget();
  const a = createFtpSource({
    ...ftpSourceOptions(server, createLogSink().log, { maxConnections: 2, hostBudget }),
    name: 'a',
  });
  const b = createFtpSource({
    ...ftpSourceOptions(server, createLogSink().log, { maxConnections: 3, hostBudget }),
    name: 'b',
  });
  sources.push(a, b);
  const sizes = await Promise.all([
    ...Array.from({ length: 4 }, () => fetchLength(a, 'c.bin')),
    ...Array.from({ length: 4 }, () => fetchLength(b, 'c.bin')),
  ]);
  expect(sizes.every((n) => n === 200_000)).toBe(true);
  // The host's limit is the smallest any source declared. (The server's own count lags behind
  // closes, so the budget's accounting is what is checked.)
  expect(hostBudget.peakInUse(`127.0.0.1:${server.port}`)).toBe(2);
});
