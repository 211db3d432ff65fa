/**
 * A pool of basic-ftp clients for one source. A basic-ftp `Client` runs one task at a time, so
 * each concurrent operation holds one client. Clients are reused, checked with NOOP after an idle
 * spell, and replaced when broken: after an `FTPError` (a 4xx/5xx reply) the connection is still
 * usable; after any other error basic-ftp has closed it.
 */
import { X509Certificate } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { type ConnectionOptions, type PeerCertificate, TLSSocket } from 'node:tls';
import { Client } from 'basic-ftp';
import type { Logger } from 'pino';
import { SourceError, ThrottledError } from '../../errors.js';
import type { ProxySettings } from '../proxy/proxy-settings.js';
import { openTunnel, proxyFor } from '../proxy/source-proxy.js';
import type { SourceConnectOptions } from '../source.js';
import {
  classifyFtpError,
  FingerprintMismatchError,
  type FtpOperation,
  FtpTimeoutError,
  isConnectionStillUsable,
  isLocalError,
} from './errors.js';
import { createHostBudget, type HostBudget, type HostLease } from './host-budget.js';
import { connectControlOverTunnel, passiveThroughProxy, passiveToControlHost, withOpenAhead } from './passive.js';

/** Pool settings beyond the common source options. */
export interface FtpPoolSettings {
  /** Shared per-host budget; without one the source gets a private budget. */
  hostBudget?: HostBudget;
  /** Send NOOP before reusing a client idle longer than this. @default 10000 */
  noopAfterIdleMs?: number;
  /** Close a client idle longer than this. @default 60000 */
  idleCloseMs?: number;
  /** Upper bound of one directory listing, in bytes (bounded memory). @default 33554432 (32 MiB) */
  maxListingBytes?: number;
  /** How long the pool stays smaller after a "too many connections" reply. @default 60000 */
  throttleWindowMs?: number;
  /** First back-off after a "too many connections" reply; doubled per retry, with jitter. @default 1000 */
  throttleBackoffMs?: number;
  /** "Too many connections" replies one acquire tolerates before it fails with ThrottledError. @default 5 */
  throttleAttempts?: number;
}

/** A connected, logged-in client and what the server offered. */
export interface PooledClient {
  readonly client: Client;
  /** The server announced MLST/MLSD in FEAT. */
  readonly mlsd: boolean;
  /** The server announced MDTM / SIZE in FEAT. */
  readonly mdtm: boolean;
  readonly size: boolean;
  lastUsedMs: number;
  releaseHost: () => void;
  idleTimer: NodeJS.Timeout | undefined;
  /**
   * The data connection for the next transfer, being opened ahead (openDataConnectionAhead):
   * awaited before the client runs another command. Never rejects.
   */
  ahead?: Promise<void> | undefined;
}

const DEFAULTS = {
  noopAfterIdleMs: 10_000,
  idleCloseMs: 60_000,
  maxListingBytes: 32 * 1024 * 1024,
  throttleWindowMs: 60_000,
  throttleBackoffMs: 1000,
  throttleAttempts: 5,
} as const;

/** Back-off after a throttle reply never grows past this. */
const MAX_THROTTLE_BACKOFF_MS = 30_000;

export class FtpClientPool {
  readonly #opts: SourceConnectOptions;
  readonly #settings: Required<Omit<FtpPoolSettings, 'hostBudget'>>;
  readonly #log: Logger;
  readonly #lease: HostLease;
  readonly #idle: PooledClient[] = [];
  readonly #busy = new Set<PooledClient>();
  /** Connections open or being opened (idle + busy + connecting). */
  #open = 0;
  #throttledMax = Number.POSITIVE_INFINITY;
  #throttledUntilMs = 0;
  #changeWaiters: Array<() => void> = [];
  #closed = false;

  constructor(opts: SourceConnectOptions, settings: FtpPoolSettings = {}) {
    this.#opts = opts;
    this.#settings = {
      noopAfterIdleMs: settings.noopAfterIdleMs ?? DEFAULTS.noopAfterIdleMs,
      idleCloseMs: settings.idleCloseMs ?? DEFAULTS.idleCloseMs,
      maxListingBytes: settings.maxListingBytes ?? DEFAULTS.maxListingBytes,
      throttleWindowMs: settings.throttleWindowMs ?? DEFAULTS.throttleWindowMs,
      throttleBackoffMs: settings.throttleBackoffMs ?? DEFAULTS.throttleBackoffMs,
      throttleAttempts: settings.throttleAttempts ?? DEFAULTS.throttleAttempts,
    };
    this.#log = opts.log;
    const budget = settings.hostBudget ?? createHostBudget();
    this.#lease = budget.join(`${opts.host}:${opts.port}`, Math.max(1, opts.maxConnections), () => this.#reclaimIdle());
  }

  /** Connections currently open or opening. */
  get openConnections(): number {
    return this.#open;
  }

  /** The most connections the pool uses right now (smaller for a while after a throttle reply). */
  get effectiveMaxConnections(): number {
    const max = Math.max(1, this.#opts.maxConnections);
    return Date.now() < this.#throttledUntilMs ? Math.max(1, Math.min(max, this.#throttledMax)) : max;
  }

  /**
   * Runs `task` with a client of the pool. Aborting `signal` closes the client, which ends any
   * transfer in flight. Errors come out classified (see errors.ts) for `operation` and `path`.
   */
  async use<T>(
    operation: FtpOperation,
    path: string | undefined,
    signal: AbortSignal,
    task: (pc: PooledClient) => Promise<T>,
  ): Promise<T> {
    const pc = await this.acquire(signal);
    const onAbort = (): void => pc.client.close();
    signal.addEventListener('abort', onAbort, { once: true });
    let result: T;
    try {
      result = await task(pc);
    } catch (err) {
      signal.removeEventListener('abort', onAbort);
      this.release(pc, err);
      if (signal.aborted) throw signal.reason;
      if (isLocalError(err)) throw err;
      throw classifyFtpError(err, this.#context(operation, path));
    }
    signal.removeEventListener('abort', onAbort);
    this.release(pc);
    return result;
  }

  /** Takes a healthy client from the pool, or opens one within the connection budgets. */
  async acquire(signal: AbortSignal): Promise<PooledClient> {
    let throttleReplies = 0;
    // Bounded: each round returns, throws, spends one of `throttleAttempts`, or waits for a release.
    for (;;) {
      signal.throwIfAborted();
      this.#assertOpen();
      const idle = this.#idle.pop();
      if (idle !== undefined) {
        const healthy = await this.#isHealthy(idle);
        if (healthy && !this.#closed) {
          this.#busy.add(idle);
          return idle;
        }
        this.#discard(idle);
        continue;
      }
      if (this.#open < this.effectiveMaxConnections) {
        this.#open++;
        let releaseHost: () => void;
        try {
          releaseHost = await this.#lease.acquire(signal);
        } catch (err) {
          this.#open--;
          this.#notify();
          throw err;
        }
        let pc: PooledClient;
        try {
          pc = await this.#connect(signal, releaseHost);
        } catch (err) {
          this.#open--;
          releaseHost();
          this.#notify();
          if (signal.aborted) throw signal.reason;
          const classified = classifyFtpError(err, this.#context('connect'));
          if (!(classified instanceof ThrottledError)) throw classified;
          throttleReplies++;
          this.#throttle();
          if (throttleReplies >= this.#settings.throttleAttempts) throw classified;
          const backoffMs = this.#backoffMs(throttleReplies);
          this.#log.warn(
            {
              event: 'source.throttled',
              source: this.#opts.name,
              openConnections: this.#open,
              maxConnections: this.effectiveMaxConnections,
              backoffMs: this.#open > 0 ? 0 : backoffMs,
              err: classified,
            },
            'server refused a connection: too many connections',
          );
          // With connections of our own open, wait for one of them instead of knocking again.
          if (this.#open === 0) await delay(backoffMs, undefined, { signal });
          continue;
        }
        if (this.#closed) {
          this.#discard(pc);
          this.#assertOpen();
        }
        this.#busy.add(pc);
        return pc;
      }
      await this.#waitForChange(signal);
    }
  }

  /** Gives a client back. With a non-FTP error (socket, timeout, abort) it is closed and replaced later. */
  release(pc: PooledClient, err?: unknown): void {
    this.#busy.delete(pc);
    const broken = pc.client.closed || (err !== undefined && !isConnectionStillUsable(err));
    // Someone (this source or another on the same host) waits for a host slot: free ours, first come first served.
    if (broken || this.#closed || this.#lease.contended()) {
      this.#discard(pc);
      return;
    }
    pc.lastUsedMs = Date.now();
    pc.idleTimer = setTimeout(() => {
      const at = this.#idle.indexOf(pc);
      if (at >= 0) {
        this.#idle.splice(at, 1);
        this.#discard(pc);
      }
    }, this.#settings.idleCloseMs);
    pc.idleTimer.unref();
    this.#idle.push(pc);
    this.#notify();
  }

  /** Closes every connection, idle or busy. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const pc of this.#idle.splice(0)) this.#discard(pc);
    for (const pc of [...this.#busy]) pc.client.close();
    this.#lease.leave();
    this.#notify();
  }

  get maxListingBytes(): number {
    return this.#settings.maxListingBytes;
  }

  #context(operation: FtpOperation, path?: string) {
    return {
      source: this.#opts.name,
      operation,
      address: `${this.#opts.host}:${this.#opts.port}`,
      ...(path !== undefined ? { path } : {}),
      ...(this.#opts.password !== undefined ? { password: this.#opts.password } : {}),
    };
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new SourceError(
        'POLLER_FTP_SOURCE_CLOSED',
        `source ${JSON.stringify(this.#opts.name)}: used after close(); create a new source`,
      );
    }
  }

  async #isHealthy(pc: PooledClient): Promise<boolean> {
    if (pc.idleTimer !== undefined) clearTimeout(pc.idleTimer);
    pc.idleTimer = undefined;
    if (pc.ahead !== undefined) {
      await pc.ahead;
      pc.ahead = undefined;
    }
    if (pc.client.closed) return false;
    if (Date.now() - pc.lastUsedMs < this.#settings.noopAfterIdleMs) return true;
    try {
      await pc.client.send('NOOP');
      return true;
    } catch (err) {
      this.#log.debug({ event: 'connection.replaced', source: this.#opts.name, err }, 'idle connection failed NOOP');
      return false;
    }
  }

  #discard(pc: PooledClient): void {
    if (pc.idleTimer !== undefined) clearTimeout(pc.idleTimer);
    pc.idleTimer = undefined;
    pc.client.close();
    this.#open--;
    pc.releaseHost();
    this.#notify();
  }

  /** Closes one idle client so another source on the same host can connect. */
  #reclaimIdle(): boolean {
    const pc = this.#idle.shift();
    if (pc === undefined) return false;
    this.#discard(pc);
    return true;
  }

  #throttle(): void {
    // The server accepted the connections we have: that is its limit for now.
    this.#throttledMax = Math.max(1, this.#open);
    this.#throttledUntilMs = Date.now() + this.#settings.throttleWindowMs;
    this.#lease.throttle(this.#throttledMax, this.#throttledUntilMs);
  }

  #backoffMs(attempt: number): number {
    const base = Math.min(MAX_THROTTLE_BACKOFF_MS, this.#settings.throttleBackoffMs * 2 ** (attempt - 1));
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  #notify(): void {
    const waiters = this.#changeWaiters;
    this.#changeWaiters = [];
    for (const wake of waiters) wake();
  }

  async #waitForChange(signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        this.#changeWaiters = this.#changeWaiters.filter((w) => w !== done);
        reject(signal.reason);
      };
      // The throttle window ending is a change too: the pool may grow again.
      const untilMs = this.#throttledUntilMs - Date.now();
      if (untilMs > 0) timer = setTimeout(done, untilMs + 1);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#changeWaiters.push(done);
    });
  }

  async #connect(signal: AbortSignal, releaseHost: () => void): Promise<PooledClient> {
    const o = this.#opts;
    const client = new Client(o.dataTimeoutMs, { maxListingBytes: this.#settings.maxListingBytes });
    withoutTaskStacks(client);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      client.close();
    }, o.connectTimeoutMs);
    const onAbort = (): void => client.close();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const proxy = await this.#openControl(client, signal);
      if (o.tls.mode !== 'none') {
        this.#checkPin(client.ftp.socket as TLSSocket);
        this.#pinDataConnections(client);
      }
      // connectTimeoutMs bounds reaching the server; from here on replies are bounded by
      // dataTimeoutMs (basic-ftp's control timeout). Servers delay a failed login by seconds.
      clearTimeout(timer);
      // Before login: some servers take UTF-8 user names only after this.
      await client.sendIgnoringError('OPTS UTF8 ON');
      // Anonymous servers ask for an e-mail address as password; some refuse an empty one.
      const anonymous = o.user === 'anonymous' || o.user === 'ftp';
      await client.login(o.user, o.password ?? (anonymous ? 'anonymous@' : ''));
      client.prepareTransfer = withOpenAhead(
        proxy === undefined ? passiveToControlHost() : passiveThroughProxy(proxy, o),
      );
      const features = await client.features();
      // RFC 3659 7.8: announcing MLST means MLSD is there too.
      const mlsd = features.has('MLST');
      await client.send('TYPE I');
      await client.sendIgnoringError('STRU F');
      if (mlsd) await client.sendIgnoringError('OPTS MLST type;size;modify;');
      if (client.ftp.hasTLS) {
        await client.sendIgnoringError('PBSZ 0');
        // Data channel protection is not optional for us: a refusal is a TLS failure of the source.
        await client.send('PROT P');
      }
      return {
        client,
        mlsd,
        mdtm: features.has('MDTM'),
        size: features.has('SIZE'),
        lastUsedMs: Date.now(),
        releaseHost,
        idleTimer: undefined,
      };
    } catch (err) {
      client.close();
      if (timedOut) {
        throw new FtpTimeoutError(`no answer within connectTimeoutMs (${o.connectTimeoutMs} ms)`, { cause: err });
      }
      throw err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Connects the control connection (directly, or over a tunnel through the source's proxy) and
   * sets up TLS as configured; returns the proxy, which data connections then go through too.
   */
  async #openControl(client: Client, signal: AbortSignal): Promise<ProxySettings | undefined> {
    const o = this.#opts;
    const tlsOptions = this.#tlsOptions();
    const proxy = proxyFor(o, o.protocol, o.host, o.port);
    if (proxy !== undefined) {
      const raw = await openTunnel(o, proxy, o.host, o.port, signal);
      await connectControlOverTunnel(client, raw, o.tls.mode === 'implicit' ? tlsOptions : undefined);
    } else if (o.tls.mode === 'implicit') {
      await client.connectImplicitTLS(o.host, o.port, tlsOptions);
    } else {
      await client.connect(o.host, o.port);
    }
    if (o.tls.mode === 'explicit') await client.useTLS(tlsOptions);
    return proxy;
  }

  #tlsOptions(): ConnectionOptions {
    const tls = this.#opts.tls;
    const pinned = tls.fingerprint !== undefined && tls.fingerprint !== '';
    const options: ConnectionOptions = {
      host: this.#opts.host,
      // A pin replaces chain verification unless a CA is given too (then both must hold).
      rejectUnauthorized: !tls.insecure && !(pinned && tls.ca === undefined),
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    };
    return options;
  }

  /**
   * With a pin, data connections are checked too: basic-ftp opens them itself, so the check hooks
   * the moment it hands a new data socket to its context, and runs at 'secureConnect', before any
   * byte of the transfer is read.
   */
  #pinDataConnections(client: Client): void {
    const pin = this.#opts.tls.fingerprint;
    if (pin === undefined || pin === '') return;
    const ftp = client.ftp;
    const accessor = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(ftp), 'dataSocket');
    const { get, set } = accessor ?? {};
    if (get === undefined || set === undefined) {
      throw new Error('basic-ftp changed: cannot check the pinned fingerprint on data connections');
    }
    Object.defineProperty(ftp, 'dataSocket', {
      configurable: true,
      get() {
        return get.call(this);
      },
      set: (socket: unknown) => {
        set.call(ftp, socket);
        if (socket instanceof TLSSocket) {
          socket.once('secureConnect', () => {
            // A resumed session proves the peer holds the keys of the pinned control session
            // (and OpenSSL shows no certificate for it): nothing more to compare.
            if (socket.isSessionReused()) return;
            try {
              this.#checkPin(socket);
            } catch (err) {
              socket.destroy(err as Error);
            }
          });
        }
      },
    });
  }

  /** Compares the server certificate with the pinned SHA-256 fingerprint, before the password is sent. */
  #checkPin(socket: TLSSocket): void {
    const pin = this.#opts.tls.fingerprint;
    if (pin === undefined || pin === '') return;
    const cert: PeerCertificate | undefined = socket.getPeerCertificate?.();
    const actual = cert?.raw ? new X509Certificate(cert.raw).fingerprint256 : '';
    if (normaliseFingerprint(actual) !== normaliseFingerprint(pin)) {
      throw new FingerprintMismatchError(actual || 'unknown');
    }
  }
}

/** Upper-case hex without separators. */
export function normaliseFingerprint(text: string): string {
  return text
    .replace(/^sha256:/i, '')
    .replace(/[^0-9a-f]/gi, '')
    .toUpperCase();
}

/**
 * basic-ftp records `new Error().stack` for every command only to explain one misuse (a task
 * started while another runs) that the pool rules out; the stack walk is a few per cent of a
 * small file's CPU. Commands are sent with stack capture off; errors raised later keep theirs.
 */
function withoutTaskStacks(client: Client): void {
  const ftp = client.ftp;
  const handle = ftp.handle;
  ftp.handle = function (this: typeof ftp, ...args: Parameters<typeof handle>) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return handle.apply(this, args);
    } finally {
      Error.stackTraceLimit = limit;
    }
  };
}
