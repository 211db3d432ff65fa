import { afterEach, expect, it } from 'vitest';
import { createFtpSource, type FtpSourceOptions } from '../../src/sources/ftp/ftp-source.js';
import type { Source } from '../../src/sources/source.js';
import { type FakeFtpServer, loginReplies, startFakeFtpServer } from '../helpers/fake-ftp-server.js';
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

it('lists an OpenVMS server: newest version of each file, sizes by SIZE (blocks are no byte count), dates in the source zone', async () => {
  fake = await startFakeFtpServer({
    listing: [
      'Directory DISK$DATA:[RADAR]',
      '',
      'DATA.DIR;1               1/9           2-JUN-2025 07:32:04  [GROUP,OWNER]    (RWED,RWED,RWED,RE)',
      'VOL_0500.BUFR;2          9/9           2-JUN-2025 07:32:04  [GROUP,OWNER]    (RWED,RWED,RWED,RE)',
      'VOL_0500.BUFR;3          9/9           2-JUN-2025 07:35:10  [GROUP,OWNER]    (RWED,RWED,RWED,RE)',
      'A_VERY_LONG_NAME_FOR_ONE_LINE.BUFR;1',
      '                         4/15         24-FEB-2025 13:17:24  [POSTWARE,LP]    (RWED,RWED,RE,)',
      'NO_SIZE.BUFR;1  2  18-APR-2025 10:40:39.90',
      '',
      'Total of 4 files, 23/48 blocks.',
    ].join('\r\n'),
    reply: (command, arg) => {
      if (command === 'SIZE' && arg === 'VOL_0500.BUFR') return '213 4321';
      if (command === 'SIZE' && arg === 'A_VERY_LONG_NAME_FOR_ONE_LINE.BUFR') return '213 1999';
      if (command === 'SIZE') return '550 no size';
      return loginReplies(command, arg, { connection: 1 });
    },
  });
  const sink = createLogSink();
  source = createFtpSource(options(fake.port, { log: sink.log, timezone: 'Europe/Helsinki' }));
  const listing = await source.list('', { signal: AbortSignal.timeout(10_000) });
  expect(
    listing.map((e) => [e.name, e.type, e.sizeBytes, new Date(e.mtimeMs).toISOString(), e.mtimePrecision]),
  ).toEqual([
    ['DATA', 'dir', 0, '2025-06-02T04:32:04.000Z', 's'],
    ['VOL_0500.BUFR', 'file', 4321, '2025-06-02T04:35:10.000Z', 's'],
    ['A_VERY_LONG_NAME_FOR_ONE_LINE.BUFR', 'file', 1999, '2025-02-24T11:17:24.000Z', 's'],
  ]);
  // The file the server would not size is skipped, said once, and makes the listing incomplete.
  const skipped = sink.events('listing.lines_skipped');
  expect(skipped).toHaveLength(1);
  expect(skipped[0]).toMatchObject({ count: 1 });
  expect(listing.unparsedLines).toBe(1);
  expect(fake.commands.filter((c) => c.startsWith('SIZE'))).toEqual([
    'SIZE VOL_0500.BUFR',
    'SIZE A_VERY_LONG_NAME_FOR_ONE_LINE.BUFR',
    'SIZE NO_SIZE.BUFR',
  ]);
});

it('asks MDTM for MLSD entries without a modify fact, and SIZE for those without a size', async () => {
  fake = await startFakeFtpServer({
    listing: [
      'type=cdir;modify=20251120100000; .',
      'type=file;size=10;modify=20251120100000; dated.bufr',
      'type=file;size=11; undated.bufr',
      'type=file; bare.bufr',
      'type=dir; sub',
      '',
    ].join('\r\n'),
    reply: (command, arg) => {
      if (command === 'FEAT')
        return '211-Features:\r\n MLST type*;size*;modify*;\r\n MDTM\r\n SIZE\r\n UTF8\r\n211 End';
      if (command === 'MDTM') return `213 ${arg === 'undated.bufr' ? '20251121081500' : '20251122093000'}`;
      if (command === 'SIZE') return '213 12';
      return loginReplies(command, arg, { connection: 1 });
    },
  });
  source = createFtpSource(options(fake.port, {}));
  const listing = await source.list('', { signal: AbortSignal.timeout(10_000) });
  expect(
    listing.map((e) => [e.name, e.type, e.sizeBytes, new Date(e.mtimeMs).toISOString(), e.mtimePrecision]),
  ).toEqual([
    ['dated.bufr', 'file', 10, '2025-11-20T10:00:00.000Z', 's'],
    ['undated.bufr', 'file', 11, '2025-11-21T08:15:00.000Z', 's'],
    ['bare.bufr', 'file', 12, '2025-11-22T09:30:00.000Z', 's'],
    ['sub', 'dir', 0, '1970-01-01T00:00:00.000Z', 's'],
  ]);
  expect(fake.commands).toContain('MLSD');
  expect(fake.commands.filter((c) => /^(SIZE|MDTM)/.test(c))).toEqual([
    'MDTM undated.bufr',
    'SIZE bare.bufr',
    'MDTM bare.bufr',
  ]);
  expect(listing.unparsedLines).toBeUndefined();
});
