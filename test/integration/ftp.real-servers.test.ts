/**
 * The Source contract against real servers: vsftpd (LIST, minute precision, year-less dates)
 * plain / explicit FTPS / implicit FTPS, and pure-ftpd (MLSD); FTPS as the servers ship it
 * (vsftpd's `require_ssl_reuse=YES`: every data connection resumes the control session), each
 * under TLS 1.2 and under TLS 1.3 (session tickets). Needs scripts/install-test-servers.sh
 * and root; skipped with a notice otherwise, except with CI=true where a missing server fails.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Client } from 'basic-ftp';
import { describe, expect, it } from 'vitest';
import { SourceError, ThrottledError } from '../../src/errors.js';
import { createFtpSource, type FtpSourceOptions } from '../../src/sources/ftp/ftp-source.js';
import {
  createServerAccount,
  type RealFtpServer,
  type RealTlsMode,
  readXferlog,
  realServerSupport,
  type ServerSupport,
  startPureFtpd,
  startVsftpd,
  type TlsVersion,
} from '../helpers/debian-ftp.js';
import { createLogSink } from '../helpers/log-sink.js';
import { type ContractTarget, defineSourceContract } from '../helpers/source-contract.js';
import { waitFor } from '../helpers/wait-for.js';

const support = realServerSupport();
const { CI } = process.env;
const onCi = CI === 'true';

function sourceOptions(server: RealFtpServer, overrides: Partial<FtpSourceOptions> = {}): FtpSourceOptions {
  return {
    name: `real-${server.kind}-${server.tlsMode}`,
    protocol: server.tlsMode === 'none' ? 'ftp' : 'ftps',
    host: server.host,
    port: server.port,
    user: server.account.user,
    password: server.account.password,
    rootPath: '/',
    tls: {
      mode: server.tlsMode,
      insecure: false,
      ...(server.certificate ? { ca: server.certificate.certPem } : {}),
    },
    timezone: 'UTC',
    maxConnections: 4,
    connectTimeoutMs: 5000,
    dataTimeoutMs: 5000,
    log: createLogSink().log,
    ...overrides,
  };
}

async function contractTarget(
  start: (account: Awaited<ReturnType<typeof createServerAccount>>) => Promise<RealFtpServer>,
): Promise<ContractTarget> {
  const account = await createServerAccount();
  let server: RealFtpServer;
  try {
    server = await start(account);
  } catch (err) {
    await account.remove();
    throw err;
  }
  return {
    source: createFtpSource(sourceOptions(server)),
    root: account.root,
    close: async () => {
      await server.close();
      await account.remove();
    },
  };
}

/** Registers `body` when the server can run; otherwise a visible skip, or a failure on CI. */
function whenAvailable(name: string, s: ServerSupport, body: () => void): void {
  if (s.available) {
    body();
    return;
  }
  if (onCi) {
    it(`${name} is installed (CI=true)`, () => {
      throw new Error(`${name} is required on CI: ${s.reason}`);
    });
    return;
  }
  console.warn(`[notice] skipping real-server tests for ${name}: ${s.reason}`);
  describe.skip(name, () => {
    it('needs the real server', () => {});
  });
}

const vsftpdModes: RealTlsMode[] = ['none', 'explicit', 'implicit'];
const TLS_VERSIONS: TlsVersion[] = ['TLSv1.2', 'TLSv1.3'];

/**
 * What a basic-ftp client (the library poller's FTP source is built on) negotiates with `server`,
 * and whether a listing, which needs a data connection, then works: with `require_ssl_reuse=YES`
 * it does only when the data connection resumed the control connection's session.
 */
async function probeTls(
  server: RealFtpServer,
  maxVersion?: TlsVersion,
  resume = true,
): Promise<{ protocol: string | null; listed: boolean }> {
  const client = new Client(5000);
  try {
    await client.access({
      host: server.host,
      port: server.port,
      user: server.account.user,
      password: server.account.password,
      secure: server.tlsMode === 'implicit' ? 'implicit' : true,
      secureOptions: { ca: server.certificate?.certPem, ...(maxVersion ? { maxVersion } : {}) },
    });
    const socket = client.ftp.socket as import('node:tls').TLSSocket;
    const protocol = socket.getProtocol();
    if (!resume) {
      // A client that does not offer the control session on its data connections.
      socket.getSession = () => undefined;
      Object.defineProperty(client.ftp, 'tlsSessionStore', { get: () => undefined, set: () => {} });
    }
    await client.list();
    return { protocol, listed: true };
  } finally {
    client.close();
  }
}

whenAvailable('vsftpd', support.vsftpd, () => {
  for (const tls of vsftpdModes) {
    for (const version of tls === 'none' ? [undefined] : TLS_VERSIONS) {
      const label = tls === 'none' ? 'plain' : `${tls} FTPS, ${version}, require_ssl_reuse=YES`;
      defineSourceContract(`vsftpd (${label})`, () =>
        contractTarget((account) => startVsftpd({ account, tls, ...(version ? { tlsVersion: version } : {}) })),
      );
    }
  }

  describe('vsftpd FTPS as shipped', () => {
    it('speaks only the pinned TLS version, and a listing works because its data connection resumes the session', async () => {
      const account = await createServerAccount();
      try {
        for (const tlsVersion of TLS_VERSIONS) {
          const server = await startVsftpd({ account, tls: 'explicit', tlsVersion });
          try {
            expect(await probeTls(server)).toEqual({ protocol: tlsVersion, listed: true });
            // The setting is live: a data connection that does not resume the session is refused.
            await expect(probeTls(server, undefined, false)).rejects.toThrow(/522|SSL|session|FIN packet/i); // vsftpd ends the session
            if (tlsVersion === 'TLSv1.3') {
              // The pin holds: a client that stops at TLS 1.2 is refused by a 1.3-only server.
              await expect(probeTls(server, 'TLSv1.2')).rejects.toThrow();
            }
          } finally {
            await server.close();
          }
        }
      } finally {
        await account.remove();
      }
    }, 30_000);

    it('fetches 40 files over one control connection under TLS 1.3: every data connection resumes (single-use tickets rotate)', async () => {
      const account = await createServerAccount();
      const server = await startVsftpd({ account, tls: 'explicit', tlsVersion: 'TLSv1.3' });
      const source = createFtpSource(sourceOptions(server, { maxConnections: 1 }));
      try {
        const names = Array.from({ length: 40 }, (_, i) => `f${String(i).padStart(2, '0')}.bufr`);
        for (const name of names) await writeFile(path.join(account.root, name), `payload of ${name}`);
        const signal = AbortSignal.timeout(60_000);
        const listing = await source.list('', { signal });
        expect(listing.map((e) => e.name).sort()).toEqual(names);
        for (const name of names) {
          const chunks: Buffer[] = [];
          const sink = new Writable({
            write(chunk: Buffer, _enc, cb) {
              chunks.push(chunk);
              cb();
            },
          });
          await source.download(name, sink, { offsetBytes: 0, signal });
          expect(Buffer.concat(chunks).toString()).toBe(`payload of ${name}`);
        }
        const log = await readXferlog(server.xferlogPath ?? '');
        expect(log.filter((r) => r.complete)).toHaveLength(40);
      } finally {
        await source.close();
        await server.close();
        await account.remove();
      }
    }, 90_000);
  });

  describe('vsftpd specifics', () => {
    it("resumes a download with REST, as the server's transfer log shows", async () => {
      const account = await createServerAccount();
      const server = await startVsftpd({ account, tls: 'none' });
      const source = createFtpSource(sourceOptions(server));
      try {
        const data = Buffer.alloc(200_000, 7);
        await writeFile(path.join(account.root, 'r.bin'), data);
        const chunks: Buffer[] = [];
        const { PassThrough } = await import('node:stream');
        const sink = new PassThrough();
        sink.on('data', (c: Buffer) => chunks.push(c));
        await source.download('r.bin', sink, { offsetBytes: 150_000, signal: AbortSignal.timeout(10_000) });
        expect(Buffer.concat(chunks).length).toBe(50_000);
        const log = await waitFor(async () => {
          const entries = await readXferlog(server.xferlogPath ?? '');
          return entries.length > 0 ? entries : undefined;
        });
        expect(log[0]).toMatchObject({ bytes: 50_000, complete: true });
      } finally {
        await source.close();
        await server.close();
        await account.remove();
      }
    });

    it('treats max_per_ip 421 replies as throttling and still finishes every download', async () => {
      const account = await createServerAccount();
      const server = await startVsftpd({ account, tls: 'none', maxPerIp: 2 });
      const sink = createLogSink();
      const source = createFtpSource(
        sourceOptions(server, { maxConnections: 4, log: sink.log, throttleBackoffMs: 50, throttleAttempts: 10 }),
      );
      try {
        await writeFile(path.join(account.root, 't.bin'), Buffer.alloc(100_000, 1));
        const { PassThrough } = await import('node:stream');
        const results = await Promise.all(
          [0, 1, 2, 3, 4, 5].map(async () => {
            let n = 0;
            const out = new PassThrough();
            out.on('data', (c: Buffer) => {
              n += c.length;
            });
            await source.download('t.bin', out, { offsetBytes: 0, signal: AbortSignal.timeout(20_000) });
            return n;
          }),
        );
        expect(results).toEqual([100_000, 100_000, 100_000, 100_000, 100_000, 100_000]);
        expect(sink.events('source.throttled').length).toBeGreaterThan(0);
      } finally {
        await source.close();
        await server.close();
        await account.remove();
      }
    });

    it('works with a pinned fingerprint instead of a CA, implicit and explicit', async () => {
      const account = await createServerAccount();
      await writeFile(path.join(account.root, 'p.bufr'), 'pinned');
      for (const tls of ['explicit', 'implicit'] as const) {
        const server = await startVsftpd({ account, tls });
        const base = sourceOptions(server);
        const source = createFtpSource({
          ...base,
          tls: { mode: tls, insecure: false, fingerprint: server.certificate?.fingerprint256 ?? '' },
        });
        try {
          const chunks: Buffer[] = [];
          const { PassThrough } = await import('node:stream');
          const sink = new PassThrough();
          sink.on('data', (c: Buffer) => chunks.push(c));
          for (let i = 0; i < 2; i++) {
            await source.list('', { signal: AbortSignal.timeout(10_000) });
          }
          await source.download('p.bufr', sink, { offsetBytes: 0, signal: AbortSignal.timeout(10_000) });
          expect(Buffer.concat(chunks).toString()).toBe('pinned');
        } finally {
          await source.close();
          await server.close();
        }
      }
      await account.remove();
    });

    it('rejects a wrong password with POLLER_FTP_LOGIN_REJECTED and no password in the message', async () => {
      const account = await createServerAccount();
      const server = await startVsftpd({ account, tls: 'explicit' });
      const wrong = 'Wrong-Secret-4711';
      const source = createFtpSource(sourceOptions(server, { password: wrong }));
      try {
        const err = await source.list('', { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(SourceError);
        expect(err).toMatchObject({ code: 'POLLER_FTP_LOGIN_REJECTED' });
        expect(String((err as Error).message)).not.toContain(wrong);
        expect((err as Error).message).not.toMatch(/\n/);
      } finally {
        await source.close();
        await server.close();
        await account.remove();
      }
    }, 30_000);
  });
});

whenAvailable('pure-ftpd', support.pureFtpd, () => {
  for (const tlsVersion of TLS_VERSIONS) {
    defineSourceContract(`pure-ftpd (MLSD, explicit FTPS, ${tlsVersion})`, () =>
      contractTarget((account) => startPureFtpd({ account, tls: true, tlsVersion, listingCap: '200000:10' })),
    );
  }

  describe('pure-ftpd FTPS', () => {
    it('speaks only the pinned TLS version', async () => {
      const account = await createServerAccount();
      try {
        for (const tlsVersion of TLS_VERSIONS) {
          const server = await startPureFtpd({ account, tls: true, tlsVersion });
          try {
            expect(await probeTls(server)).toEqual({ protocol: tlsVersion, listed: true });
          } finally {
            await server.close();
          }
        }
      } finally {
        await account.remove();
      }
    }, 30_000);
  });

  describe('pure-ftpd specifics', () => {
    it('flags a listing cut at a 2,000-entry cap (-L 2000:5, the cap of many installs)', async () => {
      const account = await createServerAccount();
      const server = await startPureFtpd({ account, listingCap: '2000:5' });
      const sink = createLogSink();
      const source = createFtpSource(sourceOptions(server, { log: sink.log }));
      try {
        const dir = path.join(account.root, 'many');
        await mkdir(dir);
        await Promise.all(
          Array.from({ length: 2100 }, (_, i) => writeFile(path.join(dir, `f${String(i).padStart(5, '0')}.bufr`), 'x')),
        );
        await account.own();
        const listing = await source.list('many', { signal: AbortSignal.timeout(20_000) });
        expect(listing.length).toBeLessThan(2100);
        expect(listing.truncated).toBe(true);
        expect(sink.events('listing.truncated')).toHaveLength(1);
      } finally {
        await source.close();
        await server.close();
        await account.remove();
      }
    });

    it('does not flag a complete listing', async () => {
      const account = await createServerAccount();
      const server = await startPureFtpd({ account });
      const source = createFtpSource(sourceOptions(server));
      try {
        await writeFile(path.join(account.root, 'one.bufr'), 'x');
        const listing = await source.list('', { signal: AbortSignal.timeout(20_000) });
        expect(listing.map((e) => e.name)).toEqual(['one.bufr']);
        expect(listing.truncated).toBeUndefined();
        expect(listing[0]?.mtimePrecision).toBe('s');
      } finally {
        await source.close();
        await server.close();
        await account.remove();
      }
    });

    it('reports a rejected login as a SourceError', async () => {
      const account = await createServerAccount();
      const server = await startPureFtpd({ account });
      // pure-ftpd delays the reply to a failed login by several seconds.
      const source = createFtpSource(sourceOptions(server, { password: 'not-the-password', dataTimeoutMs: 15_000 }));
      try {
        await expect(source.list('', { signal: AbortSignal.timeout(20_000) })).rejects.toSatisfy(
          (e: unknown) => e instanceof SourceError && !(e instanceof ThrottledError),
        );
      } finally {
        await source.close();
        await server.close();
        await account.remove();
      }
    }, 30_000);
  });
});
