import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SourceError } from '../../src/errors.js';
import { createFtpSource, type FtpSourceOptions } from '../../src/sources/ftp/ftp-source.js';
import type { Source } from '../../src/sources/source.js';
import { ftpSourceOptions, startFtpServer, type TestFtpServer } from '../helpers/ftp-server.js';
import { createLogSink } from '../helpers/log-sink.js';
import { makeTestCertificate } from '../helpers/tls-cert.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';

let tlsServer: TestFtpServer;
let plainServer: TestFtpServer;
let otherCertDir: TmpDir;
let otherCa: string;

beforeAll(async () => {
  tlsServer = await startFtpServer({ tls: true });
  plainServer = await startFtpServer();
  await writeFile(path.join(tlsServer.root, 'x.bufr'), 'secret radar data');
  otherCertDir = await makeTmpDir();
  otherCa = (await makeTestCertificate(otherCertDir.path, 'other')).certPem;
});
afterAll(async () => {
  await tlsServer.close();
  await plainServer.close();
  await otherCertDir.remove();
});

async function attempt(opts: FtpSourceOptions): Promise<{ error: unknown; source: Source }> {
  const source = createFtpSource(opts);
  try {
    await source.list('', { signal: AbortSignal.timeout(20_000) });
    return { error: undefined, source };
  } catch (error) {
    return { error, source };
  } finally {
    await source.close();
  }
}

function tlsOptions(tls: Partial<FtpSourceOptions['tls']>): FtpSourceOptions {
  const base = ftpSourceOptions(tlsServer, createLogSink().log);
  return { ...base, tls: { mode: 'explicit', insecure: false, ...tls } };
}

it('rejects a self-signed certificate when no CA is configured, before sending the password', async () => {
  const before = tlsServer.logins();
  const { error } = await attempt(tlsOptions({}));
  expect(error).toBeInstanceOf(SourceError);
  expect(error).toMatchObject({ code: 'POLLER_FTP_TLS_REJECTED' });
  expect((error as Error).message).toMatch(/tls\.ca|fingerprint/);
  expect((error as Error).message).not.toContain(tlsServer.password);
  expect(tlsServer.logins()).toEqual(before);
});

it('rejects a certificate signed by another CA', async () => {
  const { error } = await attempt(tlsOptions({ ca: otherCa }));
  expect(error).toBeInstanceOf(SourceError);
  expect(error).toMatchObject({ code: 'POLLER_FTP_TLS_REJECTED' });
});

it('rejects a certificate whose fingerprint does not match the pin, naming the actual one', async () => {
  const { error } = await attempt(tlsOptions({ fingerprint: 'AA:'.repeat(31) + 'AA' }));
  expect(error).toBeInstanceOf(SourceError);
  expect(error).toMatchObject({ code: 'POLLER_FTP_TLS_REJECTED' });
  expect((error as Error).message).toContain(tlsServer.certificate?.fingerprint256 ?? 'missing');
  expect((error as Error).message).toContain('fingerprint');
});

it('accepts a self-signed certificate by its pinned fingerprint (any case, no colons) and transfers over PROT P', async () => {
  const pin = (tlsServer.certificate?.fingerprint256 ?? '').replace(/:/g, '').toLowerCase();
  const source = createFtpSource(tlsOptions({ fingerprint: pin }));
  try {
    const chunks: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => chunks.push(c));
    await source.download('x.bufr', sink, { offsetBytes: 0, signal: AbortSignal.timeout(20_000) });
    expect(Buffer.concat(chunks).toString()).toBe('secret radar data');
  } finally {
    await source.close();
  }
});

it('accepts any certificate only with insecure: true', async () => {
  const { error } = await attempt(tlsOptions({ insecure: true }));
  expect(error).toBeUndefined();
});

it('reports a server without TLS as a SourceError, not a retry', async () => {
  const base = ftpSourceOptions(plainServer, createLogSink().log);
  const { error } = await attempt({ ...base, protocol: 'ftps', tls: { mode: 'explicit', insecure: false } });
  expect(error).toBeInstanceOf(SourceError);
  expect(error).toMatchObject({ code: 'POLLER_FTP_TLS_REFUSED' });
});

it('reports implicit TLS against an explicit-TLS port as a SourceError', async () => {
  const { error } = await attempt({
    ...tlsOptions({ insecure: true }),
    tls: { mode: 'implicit', insecure: true },
    connectTimeoutMs: 2000,
  });
  expect(error).toBeInstanceOf(SourceError);
  expect(error).toMatchObject({ code: 'POLLER_FTP_TLS_FAILED' });
  expect((error as Error).message).toContain('implicit');
});

it('checks the pin on data connections too: a data channel with another certificate fails the transfer', async () => {
  const swapping = await startFtpServer({ tls: true, faults: { swapCertificateAfterLogin: true } });
  await writeFile(path.join(swapping.root, 'y.bufr'), 'data');
  const pin = swapping.certificate?.fingerprint256 ?? '';
  const source = createFtpSource({
    ...ftpSourceOptions(swapping, createLogSink().log),
    tls: { mode: 'explicit', insecure: false, fingerprint: pin },
  });
  try {
    const err = await source
      .download('y.bufr', new PassThrough().resume(), { offsetBytes: 0, signal: AbortSignal.timeout(20_000) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ code: 'POLLER_FTP_TLS_REJECTED' });
  } finally {
    await source.close();
    await swapping.close();
  }
});
