import { afterEach, expect, it } from 'vitest';
import { createFtpSource, type FtpSourceOptions } from '../../src/sources/ftp/ftp-source.js';
import type { Source } from '../../src/sources/source.js';
import { type FakeFtpServer, startFakeFtpServer } from '../helpers/fake-ftp-server.js';
import { createLogSink } from '../helpers/log-sink.js';

let fake: FakeFtpServer | undefined;
let source: Source | undefined;
afterEach(async () => {
  await source?.close();
  await fake?.close();
});

function options(port: number, overrides: Partial<FtpSourceOptions>): FtpSourceOptions {
  return {
    name: 'odd',
    protocol: 'ftp',
    host: '127.0.0.1',
    port,
    user: 'u',
    password: 'p',
    rootPath: '/outgoing',
    tls: { mode: 'none', insecure: false },
    timezone: 'UTC',
    maxConnections: 1,
    connectTimeoutMs: 5000,
    dataTimeoutMs: 5000,
    log: createLogSink().log,
    ...overrides,
  };
}

it('lists a server with a mixed, partly garbled LIST: keeps what it understands, warns once', async () => {
  fake = await startFakeFtpServer({
    listing: [
      'total 3',
      '11-22-25  05:16AM       <DIR>          radar',
      '11-22-25  05:17AM                 1234 T_PAGB41.bufr',
      '-rw-r--r--   1 ftp  ftp   99 Nov 22  2025 old file.bufr',
      '?????????? ? ? ? ? ? broken-entry',
      'garbage',
      '',
    ].join('\r\n'),
  });
  const sink = createLogSink();
  source = createFtpSource(options(fake.port, { log: sink.log }));
  const listing = await source.list('2025', { signal: AbortSignal.timeout(10_000) });
  expect(listing.map((e) => [e.path, e.type, e.sizeBytes, e.mtimePrecision])).toEqual([
    ['2025/radar', 'dir', 0, 'minute'],
    ['2025/T_PAGB41.bufr', 'file', 1234, 'minute'],
    ['2025/old file.bufr', 'file', 99, 'day'],
  ]);
  const skipped = sink.events('listing.lines_skipped');
  expect(skipped).toHaveLength(1);
  expect(skipped[0]).toMatchObject({ count: 2, dir: '2025', source: 'odd' });
  expect(fake.commands).toContain('CWD /outgoing/2025');
});

it('flags a LIST of exactly 2,000 entries as probably truncated', async () => {
  const lines = Array.from({ length: 2000 }, (_, i) => `-rw-r--r-- 1 ftp ftp 10 Nov 20 10:00 f${i}.bufr`);
  fake = await startFakeFtpServer({ listing: lines.join('\r\n') });
  const sink = createLogSink();
  source = createFtpSource(options(fake.port, { log: sink.log }));
  const listing = await source.list('', { signal: AbortSignal.timeout(10_000) });
  expect(listing).toHaveLength(2000);
  expect(listing.truncated).toBe(true);
  expect(sink.events('listing.truncated')).toHaveLength(1);
});

it('uses PASV when EPSV is refused, connecting to the control host instead of a NAT address', async () => {
  fake = await startFakeFtpServer({
    listing: '-rw-r--r-- 1 ftp ftp 5 Nov 20 10:00 behind-nat.bufr',
    passive: 'pasv-nat',
  });
  source = createFtpSource(options(fake.port, {}));
  for (let i = 0; i < 2; i++) {
    const listing = await source.list('', { signal: AbortSignal.timeout(10_000) });
    expect(listing.map((e) => e.name)).toEqual(['behind-nat.bufr']);
  }
  // EPSV is tried once per connection; after that PASV is used straight away.
  expect(fake.commands.filter((c) => c === 'EPSV')).toHaveLength(1);
  expect(fake.commands.filter((c) => c === 'PASV')).toHaveLength(2);
});
