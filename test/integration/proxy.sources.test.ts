/**
 * Every network source kind through real proxies: squid (HTTP CONNECT, with and without Basic
 * auth) and dante (SOCKS5, with and without username/password), per source and from the
 * environment. The proxy's own log proves the traffic went through it; a proxy that refuses the
 * credentials fails with one SourceError that never repeats them.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PollerError, SourceError } from '../../src/errors.js';
import { createFtpSource } from '../../src/sources/ftp/ftp-source.js';
import { createHttpSource } from '../../src/sources/http/http-source.js';
import type { ProxyCredentials, ProxySettings } from '../../src/sources/proxy/proxy-settings.js';
import { createS3Source } from '../../src/sources/s3/s3-source.js';
import { createSftpSource } from '../../src/sources/sftp/sftp-source.js';
import type { Source, SourceConnectOptions } from '../../src/sources/source.js';
import { ftpSourceOptions, startFtpServer, type TestFtpServer } from '../helpers/ftp-server.js';
import { httpServerMissing, startWebServer, type TestWebServer } from '../helpers/http-servers.js';
import { webSourceOptions } from '../helpers/http-source-options.js';
import { createLogSink, type LogSink } from '../helpers/log-sink.js';
import { proxyAvailability, type RunningProxy, startDante, startSquid } from '../helpers/proxies.js';
import { s3SourceOptions, startS3Server, type TestS3Server } from '../helpers/s3-server.js';
import { type SftpTestServer, startSftpServer } from '../helpers/sftp-server.js';
import { sftpConnectOptions } from '../helpers/source-test-utils.js';
import { makeTestCertificate, type TestCertificate } from '../helpers/tls-cert.js';
import { waitFor } from '../helpers/wait-for.js';

const availability = proxyAvailability();
if (!availability.available && process.env['CI'] === 'true') throw new Error(availability.reason);
if (!availability.available) console.warn(`proxy tests skipped: ${availability.reason}`);

const CONTENT = 'BUFR through a proxy 7777\n';
const signal = () => AbortSignal.timeout(30_000);

/** A way through: which proxy, and the credentials the source is given. */
interface Via {
  readonly name: string;
  readonly proxy: () => RunningProxy;
  readonly withCredentials: boolean;
}

/** One source kind: a server with CONTENT at `dir/file`, and its source through a proxy. */
interface Kind {
  readonly name: string;
  readonly targetPorts: () => number[];
  readonly file: string;
  open(over: Partial<SourceConnectOptions>, log: LogSink): Source;
}

let squid: RunningProxy;
let squidAuth: RunningProxy;
let dante: RunningProxy;
let danteAuth: RunningProxy;
let ftp: TestFtpServer;
let ftps: TestFtpServer;
let sftp: SftpTestServer;
let web: TestWebServer | undefined;
let webTls: TestWebServer | undefined;
let cert: TestCertificate | undefined;
let s3: TestS3Server;
let tmp: string;

const VIAS: Via[] = [
  { name: 'squid (HTTP CONNECT)', proxy: () => squid, withCredentials: false },
  { name: 'squid with Basic auth', proxy: () => squidAuth, withCredentials: true },
  { name: 'dante (SOCKS5)', proxy: () => dante, withCredentials: false },
  { name: 'dante with username/password', proxy: () => danteAuth, withCredentials: true },
];

const webMissing = httpServerMissing('nginx-html');

const KINDS: Kind[] = [
  {
    name: 'ftp',
    file: 'in/a.bufr',
    targetPorts: () => [ftp.port],
    open: (over, log) => createFtpSource({ ...ftpSourceOptions(ftp, log.log), ...over }),
  },
  {
    name: 'ftps (explicit)',
    file: 'in/a.bufr',
    targetPorts: () => [ftps.port],
    open: (over, log) => createFtpSource({ ...ftpSourceOptions(ftps, log.log), ...over }),
  },
  {
    name: 'sftp',
    file: 'in/a.bufr',
    targetPorts: () => [sftp.port],
    open: (over, log) =>
      createSftpSource(
        sftpConnectOptions({
          port: sftp.port,
          user: sftp.user,
          password: sftp.password,
          rootPath: '/',
          hostKey: sftp.hostKeyFingerprint,
          log: log.log,
          ...over,
        }),
      ),
  },
  ...(webMissing === undefined
    ? [
        {
          name: 'http',
          file: 'in/a.bufr',
          targetPorts: () => [web?.port ?? 0],
          open: (over: Partial<SourceConnectOptions>, log: LogSink) =>
            createHttpSource(webSourceOptions(web?.port ?? 0, log.log, over)),
        },
        {
          name: 'https',
          file: 'in/a.bufr',
          targetPorts: () => [webTls?.port ?? 0],
          open: (over: Partial<SourceConnectOptions>, log: LogSink) =>
            createHttpSource(
              webSourceOptions(webTls?.port ?? 0, log.log, {
                protocol: 'https',
                tls: { mode: 'none', insecure: false, ...(cert !== undefined && { ca: cert.certPem }) },
                ...over,
              }),
            ),
        },
      ]
    : []),
  {
    name: 's3',
    file: 'in/a.bufr',
    targetPorts: () => [Number(new URL(s3.endpoint).port)],
    open: (over, log) => createS3Source({ ...s3SourceOptions(s3, log.log), ...over }),
  },
];

function proxyOf(p: RunningProxy, kind: 'http' | 'socks5'): ProxySettings {
  return { protocol: kind, host: p.host, port: p.port, from: 'proxy' };
}

function credentialsOf(p: RunningProxy): ProxyCredentials {
  return { username: p.user ?? '', password: p.password ?? '' };
}

function optionsFor(via: Via): Partial<SourceConnectOptions> {
  const p = via.proxy();
  return {
    proxy: proxyOf(p, p.url.startsWith('socks5') ? 'socks5' : 'http'),
    ...(via.withCredentials && { proxyCredentials: credentialsOf(p) }),
  };
}

async function fetchOne(source: Source, file: string): Promise<string> {
  const dir = path.posix.dirname(file);
  const listing = await source.list(dir, { signal: signal() });
  expect(listing.map((e) => e.path)).toContain(file);
  const chunks: Buffer[] = [];
  const to = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await source.download(file, to, { signal: signal(), offsetBytes: 0 });
  return Buffer.concat(chunks).toString('utf8');
}

/** How each proxy writes the target of a connection in its log. */
function targetInLog(p: RunningProxy, port: number): string {
  return p.url.startsWith('socks5') ? `127.0.0.1.${port}` : `CONNECT 127.0.0.1:${port}`;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe.skipIf(!availability.available)('sources through squid and dante', () => {
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'poller-proxy-'));
    [squid, squidAuth, dante, danteAuth] = await Promise.all([
      startSquid(),
      startSquid({ auth: true }),
      startDante(),
      startDante({ auth: true }),
    ]);
    [ftp, ftps, sftp, s3] = await Promise.all([
      startFtpServer(),
      startFtpServer({ tls: true }),
      startSftpServer(),
      startS3Server(),
    ]);
    if (webMissing === undefined) {
      cert = await makeTestCertificate(tmp);
      [web, webTls] = await Promise.all([
        startWebServer('nginx-html'),
        startWebServer('nginx-html', { tls: { certPath: cert.certPath, keyPath: cert.keyPath } }),
      ]);
    }
    for (const root of [ftp.root, ftps.root, sftp.root, web?.root, webTls?.root]) {
      if (root === undefined) continue;
      await fs.mkdir(path.join(root, 'in'), { recursive: true });
      await fs.writeFile(path.join(root, 'in', 'a.bufr'), CONTENT);
    }
    const s3Tree = path.join(tmp, 's3');
    await fs.mkdir(path.join(s3Tree, 'in'), { recursive: true });
    await fs.writeFile(path.join(s3Tree, 'in', 'a.bufr'), CONTENT);
    await s3.putTree(s3Tree, '');
  }, 90_000);

  afterAll(async () => {
    await Promise.allSettled([squid, squidAuth, dante, danteAuth].filter((p) => p !== undefined).map((p) => p.stop()));
    await Promise.allSettled([ftp?.close(), ftps?.close(), sftp?.close(), s3?.close(), web?.close(), webTls?.close()]);
    await fs.rm(tmp, { recursive: true, force: true });
  }, 30_000);

  for (const kind of KINDS) {
    for (const via of VIAS) {
      it(`${kind.name} through ${via.name}: listed and fetched, and the proxy logged it`, async () => {
        const log = createLogSink('info');
        const source = kind.open(optionsFor(via), log);
        try {
          expect(await fetchOne(source, kind.file)).toBe(CONTENT);
        } finally {
          await source.close();
        }
        const p = via.proxy();
        for (const port of kind.targetPorts()) {
          await waitFor(async () => (await p.log()).includes(targetInLog(p, port)), {
            timeoutMs: 10_000,
            what: `${p.url} to log a connection to port ${port}`,
          });
        }
        if (kind.name.startsWith('ftp')) {
          // Data connections went through the proxy too: a tunnel to another port of the server.
          const ports = [...(await p.log()).matchAll(/127\.0\.0\.1[.:](\d+)/g)].map((m) => Number(m[1]));
          expect(ports.some((port) => port !== kind.targetPorts()[0] && port !== p.port)).toBe(true);
        }
        const proxied = log.events('source.proxied');
        expect(proxied.length).toBeGreaterThan(0);
        if (via.withCredentials) expect(JSON.stringify(log.lines)).not.toContain(p.password);
      });
    }

    it(`${kind.name}: a proxy that refuses the credentials fails with one SourceError that never shows them`, async () => {
      for (const p of [squidAuth, danteAuth]) {
        const log = createLogSink('trace');
        const wrong = `wrong-${p.password}`;
        const source = kind.open(
          {
            proxy: proxyOf(p, p.url.startsWith('socks5') ? 'socks5' : 'http'),
            proxyCredentials: { username: p.user ?? '', password: wrong },
          },
          log,
        );
        try {
          const err = await rejection(source.list(path.posix.dirname(kind.file), { signal: signal() }));
          expect(err).toBeInstanceOf(SourceError);
          expect((err as PollerError).code).toBe('POLLER_PROXY_REFUSED');
          expect(err.message).toContain(`127.0.0.1:${p.port}`);
          const everything = `${err.message} ${String(err.stack)} ${JSON.stringify(err)} ${JSON.stringify(log.lines)}`;
          expect(everything).not.toContain(wrong);
          expect(everything).not.toContain(p.password);
        } finally {
          await source.close();
        }
      }
    });
  }

  it('the environment chooses the proxy (ALL_PROXY, HTTPS_PROXY), NO_PROXY and `proxy: none` bypass it', async () => {
    const saved = { ...process.env };
    try {
      for (const name of ['all_proxy', 'ALL_PROXY', 'https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY']) {
        delete process.env[name];
      }
      delete process.env['no_proxy'];
      delete process.env['NO_PROXY'];
      process.env['ALL_PROXY'] = dante.url;
      // dante logs a connection when it opens ("[:") and when it ends ("]:"), the latter late.
      const opened = async (): Promise<number> =>
        (await dante.log())
          .split('\n')
          .filter((l) => l.includes('tcp/connect [:') && l.includes(`127.0.0.1.${ftp.port}`)).length;
      const before = await opened();
      const ftpKind = KINDS[0]!;
      const viaEnv = ftpKind.open({}, createLogSink('info'));
      try {
        expect(await fetchOne(viaEnv, ftpKind.file)).toBe(CONTENT);
      } finally {
        await viaEnv.close();
      }
      await waitFor(async () => (await opened()) > before, { timeoutMs: 10_000, what: 'dante to log the connection' });

      // NO_PROXY matching the host, and a source's `proxy: none`: direct, the proxy sees nothing.
      for (const [env, over] of [
        [{ NO_PROXY: 'localhost,127.0.0.0/8' }, {}],
        [{}, { proxy: 'none' as const }],
      ] as const) {
        Object.assign(process.env, env);
        const mark = await opened();
        const direct = ftpKind.open(over, createLogSink('info'));
        try {
          expect(await fetchOne(direct, ftpKind.file)).toBe(CONTENT);
        } finally {
          await direct.close();
        }
        expect(await opened()).toBe(mark);
        delete process.env['NO_PROXY'];
      }
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });
});
