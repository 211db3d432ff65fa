import { createReadStream } from 'node:fs';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { FileSystem, type FtpConnection } from 'ftp-srv';
import type { Logger } from 'pino';
import { createQuietFtpSrv } from '../../src/demo/ftp-srv.js';
import type { FtpSourceOptions } from '../../src/sources/ftp/ftp-source.js';
import { freePort, freePortRange } from './free-port.js';
import { makeTestCertificate, type TestCertificate } from './tls-cert.js';
import { makeTmpDir } from './tmp-dir.js';

/** Faults the in-process server can inject, for tests of recovery paths. */
export interface FtpServerFaults {
  /** Reset the data connection of a RETR after about this many bytes have been read from the file. */
  dropDataAfterBytes?: number;
  /** How many RETRs are cut short before the server behaves again. @default 1 */
  dropTimes?: number;
  /** Send this many bytes of a RETR, then nothing more (the data connection stays open). */
  stallDataAfterBytes?: number;
  /** How many RETRs stall before the server behaves again. @default every one */
  stallTimes?: number;
  /**
   * With `tls`: after the first login, present another certificate on new TLS connections, so
   * data connections show a certificate other than the control connection's.
   */
  swapCertificateAfterLogin?: boolean;
  /** Wait this long before each RETR starts sending (hosts latency-bound, not CPU-bound). */
  retrDelayMs?: number;
}

export interface StartFtpServerOptions {
  /** @default 'poller' */
  user?: string;
  /** @default a random string */
  password?: string;
  /** Also accept the user `anonymous` without a password. */
  anonymous?: boolean;
  /** Offer explicit TLS (AUTH TLS) with a throwaway self-signed certificate. */
  tls?: boolean;
  /** With `tls`: present this key and certificate instead (an expired one, one for another name). */
  tlsCertificate?: { keyPem: string; certPem: string };
  faults?: FtpServerFaults;
}

/** A running ftp-srv on 127.0.0.1 serving a fresh tmp dir. */
export interface TestFtpServer {
  /** `ftp://127.0.0.1:<port>` (no credentials). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Local directory the server serves as `/`: create files here. */
  readonly root: string;
  readonly user: string;
  readonly password: string;
  /** Present when started with `tls: true`. */
  readonly certificate?: TestCertificate;
  /** Control connections currently open. */
  openConnections(): number;
  /** Most control connections open at the same time so far. */
  maxOpenConnections(): number;
  /** Control connections accepted so far. */
  totalConnections(): number;
  /** Closes every control connection from the server side (clients see a dead idle connection). */
  dropControlConnections(): Promise<void>;
  /** Logins made over a TLS control connection, and over plain text. */
  logins(): { tls: number; plain: number };
  /** Data connections the fault injection has cut so far. */
  droppedTransfers(): number;
  /** Transfers the fault injection has stalled so far. */
  stalledTransfers(): number;
  /** Local paths of the files of every RETR that completed, in order (a witness of real downloads). */
  retrieved(): string[];
  /**
   * Hold the next directory listing (LIST) before it answers, until `release` is called; resolves
   * once a client is inside that listing. Listings after the held one answer at once.
   */
  holdNextList(): Promise<{ release(): void }>;
  close(): Promise<void>;
}

interface FaultState {
  faults: FtpServerFaults;
  dropped: number;
  stalled: number;
  /** Armed by `holdNextList`: the next LIST waits on `gate`, then says so through `entered`. */
  hold?: { gate: Promise<void>; entered: () => void };
}

/** Serves files from the root; RETR can be cut short by the fault settings. */
class FaultyFileSystem extends FileSystem {
  readonly #state: FaultState;
  constructor(connection: FtpConnection, root: string, state: FaultState) {
    super(connection, { root, cwd: '/' });
    this.#state = state;
  }

  override async list(dir?: string): Promise<unknown> {
    const hold = this.#state.hold;
    if (hold) {
      this.#state.hold = undefined;
      hold.entered();
      await hold.gate;
    }
    return await super.list(dir);
  }

  override async read(fileName: string, opts: { start?: number } = {}): Promise<unknown> {
    const delay = this.#state.faults.retrDelayMs ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const result = (await super.read(fileName, opts)) as {
      stream: NodeJS.ReadableStream & { path: string };
      clientPath: string;
    };
    const stallAt = this.#state.faults.stallDataAfterBytes;
    if (stallAt !== undefined && this.#state.stalled < (this.#state.faults.stallTimes ?? Number.POSITIVE_INFINITY)) {
      this.#state.stalled++;
      (result.stream as unknown as { destroy(): void }).destroy();
      const source = createReadStream(result.stream.path, { start: opts.start, end: (opts.start ?? 0) + stallAt - 1 });
      // Passes the first bytes on and never ends: the server keeps the transfer open, silent.
      const stalled = new PassThrough();
      source.pipe(stalled, { end: false });
      return { stream: Object.assign(stalled, { path: result.stream.path }), clientPath: result.clientPath };
    }
    const limit = this.#state.faults.dropDataAfterBytes;
    if (limit === undefined || this.#state.dropped >= (this.#state.faults.dropTimes ?? 1)) return result;
    // Re-open with small chunks so the cut lands close to the requested byte count.
    (result.stream as unknown as { destroy(): void }).destroy();
    const stream = createReadStream(result.stream.path, { start: opts.start, highWaterMark: 16 * 1024 });
    let sent = 0;
    let cut = false;
    stream.on('data', (chunk) => {
      sent += chunk.length;
      if (cut || sent < limit) return;
      cut = true;
      this.#state.dropped++;
      const socket = (this.connection as unknown as { connector?: { socket?: Socket } }).connector?.socket;
      // A reset, not a FIN: the client must see a broken transfer, not a short file.
      socket?.resetAndDestroy();
    });
    return { stream, clientPath: result.clientPath };
  }
}

/** Starts ftp-srv on 127.0.0.1 with a free port, a passive range and a tmp root. */
export async function startFtpServer(opts: StartFtpServerOptions = {}): Promise<TestFtpServer> {
  const tmp = await makeTmpDir('poller-ftp-');
  const certDir = await makeTmpDir('poller-ftp-cert-');
  const root = tmp.path;
  const user = opts.user ?? 'poller';
  const password = opts.password ?? `pw-${Math.random().toString(36).slice(2)}`;
  const certificate = opts.tls ? await makeTestCertificate(certDir.path) : undefined;
  const otherCertificate =
    opts.tls && opts.faults?.swapCertificateAfterLogin ? await makeTestCertificate(certDir.path, 'other') : undefined;
  const port = await freePort();
  const pasv = await freePortRange(40);
  const state: FaultState = { faults: opts.faults ?? {}, dropped: 0, stalled: 0 };

  const { server } = createQuietFtpSrv({
    url: `ftp://127.0.0.1:${port}`,
    pasv_url: '127.0.0.1',
    pasv_min: pasv.min,
    pasv_max: pasv.max,
    anonymous: opts.anonymous ?? false,
    tls: certificate
      ? opts.tlsCertificate
        ? { key: opts.tlsCertificate.keyPem, cert: opts.tlsCertificate.certPem }
        : { key: certificate.keyPem, cert: certificate.certPem }
      : false,
  });

  let open = 0;
  let maxOpen = 0;
  let total = 0;
  const loginCounts = { tls: 0, plain: 0 };
  server.on('connect' as 'disconnect', () => {
    open++;
    total++;
    maxOpen = Math.max(maxOpen, open);
  });
  server.on('disconnect', () => {
    open--;
  });
  const retrieved: string[] = [];
  server.on('login', ({ connection, username, password: given }, resolve, reject) => {
    connection.on('RETR', (error: unknown, filePath: string) => {
      if (!error) retrieved.push(filePath);
    });
    const anonymousOk = opts.anonymous === true && username === 'anonymous';
    if (anonymousOk || (username === user && given === password)) {
      if (connection.secure) loginCounts.tls++;
      else loginCounts.plain++;
      if (state.faults.swapCertificateAfterLogin && otherCertificate) {
        (server as unknown as { options: { tls: object } }).options.tls = {
          key: otherCertificate.keyPem,
          cert: otherCertificate.certPem,
        };
      }
      resolve({ fs: new FaultyFileSystem(connection, root, state) });
    } else {
      reject(new Error('Login incorrect'));
    }
  });
  await server.listen();

  let closed = false;
  return {
    url: `ftp://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    root,
    user,
    password,
    ...(certificate ? { certificate } : {}),
    openConnections: () => open,
    maxOpenConnections: () => maxOpen,
    totalConnections: () => total,
    async dropControlConnections() {
      const connections = (server as unknown as { connections: Record<string, { commandSocket: Socket }> }).connections;
      for (const connection of Object.values(connections)) connection.commandSocket.destroy();
    },
    droppedTransfers: () => state.dropped,
    stalledTransfers: () => state.stalled,
    retrieved: () => [...retrieved],
    holdNextList() {
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      return new Promise((resolve) => {
        state.hold = { gate, entered: () => resolve({ release }) };
      });
    },
    logins: () => ({ ...loginCounts }),
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
      await tmp.remove();
      await certDir.remove();
    },
  };
}

/** Source options for a test server: plain FTP, or explicit FTPS trusting the throwaway certificate. */
export function ftpSourceOptions(
  server: TestFtpServer,
  log: Logger,
  overrides: Partial<FtpSourceOptions> = {},
): FtpSourceOptions {
  const tls = server.certificate
    ? { mode: 'explicit' as const, ca: server.certificate.certPem, insecure: false }
    : { mode: 'none' as const, insecure: false };
  return {
    name: 'test-ftp',
    protocol: server.certificate ? 'ftps' : 'ftp',
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    rootPath: '/',
    tls,
    timezone: 'UTC',
    maxConnections: 4,
    connectTimeoutMs: 5000,
    dataTimeoutMs: 5000,
    log,
    ...overrides,
  };
}
