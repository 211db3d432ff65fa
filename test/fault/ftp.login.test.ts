import { afterEach, expect, it } from 'vitest';
import { SourceError } from '../../src/errors.js';
import { createFtpSource } from '../../src/sources/ftp/ftp-source.js';
import type { Source } from '../../src/sources/source.js';
import { type FakeFtpServer, loginReplies, startFakeFtpServer } from '../helpers/fake-ftp-server.js';
import { ftpSourceOptions, startFtpServer, type TestFtpServer } from '../helpers/ftp-server.js';
import { createLogSink } from '../helpers/log-sink.js';

let server: TestFtpServer | undefined;
let fake: FakeFtpServer | undefined;
let source: Source | undefined;
afterEach(async () => {
  await source?.close();
  await server?.close();
  await fake?.close();
  server = undefined;
  fake = undefined;
});

it('a wrong password is POLLER_FTP_LOGIN_REJECTED, one line, without the password', async () => {
  server = await startFtpServer();
  const password = 'Hunter2-Wrong-Password';
  const sink = createLogSink();
  source = createFtpSource(ftpSourceOptions(server, sink.log, { password }));
  const err = await source.list('', { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SourceError);
  expect(err).toMatchObject({ code: 'POLLER_FTP_LOGIN_REJECTED', retryable: false });
  const message = (err as Error).message;
  expect(message).toContain('test-ftp');
  expect(message).toMatch(/check the user and password/);
  expect(message).not.toContain(password);
  expect(message).not.toMatch(/[\r\n]/);
  expect(JSON.stringify(sink.lines)).not.toContain(password);
});

it('never repeats a password that a server echoes in its reply', async () => {
  const password = 'Echoed-Secret-99';
  fake = await startFakeFtpServer({
    reply: (command, arg, state) =>
      command === 'PASS'
        ? `530-Login failed for password ${arg}\r\n530 Login incorrect`
        : loginReplies(command, arg, state),
  });
  source = createFtpSource({
    ...ftpSourceOptions(
      { host: '127.0.0.1', port: fake.port, user: 'u', password } as unknown as TestFtpServer,
      createLogSink().log,
    ),
    password,
  });
  const err = await source.list('', { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'POLLER_FTP_LOGIN_REJECTED' });
  expect((err as Error).message).not.toContain(password);
  expect((err as Error).message).toContain('***');
});

it('an unknown host and a closed port are SourceErrors that say what to check', async () => {
  const base = ftpSourceOptions(
    { host: '127.0.0.1', port: 1, user: 'u', password: 'p' } as unknown as TestFtpServer,
    createLogSink().log,
  );
  source = createFtpSource(base);
  await expect(source.list('', { signal: AbortSignal.timeout(20_000) })).rejects.toMatchObject({
    code: 'POLLER_FTP_CONNECTION_REFUSED',
  });
  await source.close();
  source = createFtpSource({ ...base, host: 'no-such-host.invalid' });
  const err = await source.list('', { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SourceError);
  expect(err).toMatchObject({ code: 'POLLER_FTP_HOST_UNKNOWN' });
});
