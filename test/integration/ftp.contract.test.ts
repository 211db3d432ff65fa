import { afterAll, expect, it } from 'vitest';
import { createFtpSource } from '../../src/sources/ftp/ftp-source.js';
import { ftpSourceOptions, startFtpServer, type TestFtpServer } from '../helpers/ftp-server.js';
import { createLogSink } from '../helpers/log-sink.js';
import { defineSourceContract } from '../helpers/source-contract.js';

const plainServers: TestFtpServer[] = [];
const tlsServers: TestFtpServer[] = [];
afterAll(async () => {
  await Promise.all([...plainServers, ...tlsServers].map((s) => s.close()));
});

defineSourceContract('ftp (ftp-srv, LIST)', async () => {
  const server = await startFtpServer();
  plainServers.push(server);
  const source = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  return { source, root: server.root, close: () => server.close() };
});

defineSourceContract('ftps explicit (ftp-srv, AUTH TLS, PROT P)', async () => {
  const server = await startFtpServer({ tls: true });
  tlsServers.push(server);
  const source = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  return { source, root: server.root, close: () => server.close() };
});

it('logs in over TLS when the source says ftps, and in plain text for ftp', () => {
  const [plain] = plainServers;
  const [tls] = tlsServers;
  expect(plain?.logins()).toMatchObject({ tls: 0 });
  expect(plain?.logins().plain).toBeGreaterThan(0);
  expect(tls?.logins()).toMatchObject({ plain: 0 });
  expect(tls?.logins().tls).toBeGreaterThan(0);
});
