/**
 * Opens a TCP connection to `host:port` through a proxy: HTTP CONNECT (node:http, which speaks
 * the protocol) or SOCKS5 (the `socks` package), with credentials when the proxy has them. The
 * socket comes back raw: the caller layers TLS (FTPS, HTTPS, MQTTS) or SSH on it as it would on a
 * direct one, so server verification and SNI are unchanged by the proxy.
 */
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import { SocksClient, type SocksClientOptions } from 'socks';
import { SourceError } from '../../errors.js';
import { describeProxy, type ProxySettings } from './proxy-settings.js';

export interface DialOptions {
  /** Bounds reaching the proxy and the proxy reaching the server. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** Opens a tunnel to `host:port`; rejects with a SourceError that names the proxy, never its credentials. */
export async function dialThroughProxy(
  proxy: ProxySettings,
  host: string,
  port: number,
  opts: DialOptions,
): Promise<Socket> {
  opts.signal?.throwIfAborted();
  const target = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  const dial = proxy.protocol === 'http' || proxy.protocol === 'https' ? dialHttpConnect : dialSocks5;
  const socket = await dial(proxy, host, port, target, opts);
  // The dialers leave the socket paused: no byte (an FTP greeting) is lost before its reader is attached.
  socket.setTimeout(0);
  return socket;
}

function proxyFailure(proxy: ProxySettings, target: string, status: number | string): SourceError {
  const where = `proxy ${describeProxy(proxy)} (from ${proxy.from})`;
  if (status === 407 || status === 'auth') {
    const how = proxy.username === undefined ? 'wants credentials' : 'refused the credentials';
    return new SourceError(
      'POLLER_PROXY_REFUSED',
      `${where} ${how} for ${target}; set proxyCredentialsFile (user:password) or fix it`,
    );
  }
  if (status === 403 || status === 'denied') {
    return new SourceError(
      'POLLER_PROXY_REFUSED',
      `${where} denies the connection to ${target}; ask for it to be allowed`,
    );
  }
  return new SourceError(
    'POLLER_PROXY_TARGET_FAILED',
    `${where} could not connect to ${target} (${typeof status === 'number' ? `HTTP ${status}` : status})`,
  );
}

function unreachable(proxy: ProxySettings, reason: string, cause?: unknown): SourceError {
  return new SourceError(
    'POLLER_PROXY_UNREACHABLE',
    `proxy ${describeProxy(proxy)} (from ${proxy.from}): ${reason}; check the proxy address`,
    cause !== undefined ? { cause: stripCause(cause) } : undefined,
  );
}

/** Only code and message of a low-level error: its fields could hold the request (and credentials). */
function stripCause(err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  const copy = new Error(String(e?.message ?? err)) as NodeJS.ErrnoException;
  if (e?.code !== undefined) copy.code = e.code;
  return copy;
}

async function dialHttpConnect(
  proxy: ProxySettings,
  _host: string,
  _port: number,
  target: string,
  opts: DialOptions,
): Promise<Socket> {
  const headers: Record<string, string> = { host: target };
  if (proxy.username !== undefined) {
    const pair = `${proxy.username}:${proxy.password ?? ''}`;
    headers['proxy-authorization'] = `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
  }
  const request = (proxy.protocol === 'https' ? https : http).request({
    host: proxy.host,
    port: proxy.port,
    method: 'CONNECT',
    path: target,
    headers,
    agent: false,
    timeout: opts.timeoutMs,
    ...(proxy.protocol === 'https' && { servername: isIP(proxy.host) === 0 ? proxy.host : undefined }),
  });
  return await new Promise<Socket>((resolve, reject) => {
    const onAbort = (): void => {
      request.destroy();
      reject(opts.signal?.reason);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => opts.signal?.removeEventListener('abort', onAbort);
    request.once('connect', (res, socket, head) => {
      done();
      res.resume();
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(proxyFailure(proxy, target, res.statusCode ?? 0));
        return;
      }
      socket.pause();
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    // A proxy that answers CONNECT with a plain response (no tunnel) ends here.
    request.once('response', (res) => {
      done();
      res.resume();
      reject(proxyFailure(proxy, target, res.statusCode ?? 0));
    });
    request.once('timeout', () => {
      done();
      request.destroy();
      reject(unreachable(proxy, `no answer within ${opts.timeoutMs} ms`));
    });
    request.once('error', (err) => {
      done();
      reject(unreachable(proxy, `cannot connect (${(err as NodeJS.ErrnoException).code ?? err.message})`, err));
    });
    request.end();
  });
}

async function dialSocks5(
  proxy: ProxySettings,
  host: string,
  port: number,
  target: string,
  opts: DialOptions,
): Promise<Socket> {
  // socks5:// resolves the name here (curl's rule); socks5h:// lets the proxy resolve it.
  const destinationHost =
    proxy.protocol === 'socks5' && isIP(host) === 0 ? (await lookup(host, { verbatim: true })).address : host;
  const options: SocksClientOptions = {
    command: 'connect',
    destination: { host: destinationHost, port },
    proxy: {
      host: proxy.host,
      port: proxy.port,
      type: 5,
      ...(proxy.username !== undefined && { userId: proxy.username, password: proxy.password ?? '' }),
    },
    timeout: opts.timeoutMs,
  };
  const client = new SocksClient(options);
  return await new Promise<Socket>((resolve, reject) => {
    const onAbort = (): void => {
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.on('established', (info: { socket: Socket }) => info.socket.destroy());
      reject(opts.signal?.reason);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    client.once('established', (info: { socket: Socket }) => {
      opts.signal?.removeEventListener('abort', onAbort);
      // `socks` re-emits bytes that came with its reply (an FTP greeting) and resumes the socket
      // in a setImmediate of its own: catch both, then hand the socket over paused with them unshifted.
      const socket = info.socket;
      const early: Buffer[] = [];
      const grab = (chunk: Buffer): void => {
        early.push(chunk);
      };
      socket.on('data', grab);
      setImmediate(() => {
        socket.removeListener('data', grab);
        socket.pause();
        if (early.length > 0) socket.unshift(Buffer.concat(early));
        resolve(socket);
      });
    });
    client.once('error', (err: Error & { options?: unknown }) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(classifySocksError(proxy, target, err));
    });
    client.connect();
  });
}

/** The `socks` package reports failures by message (its ErrorMessages); we read them here only. */
function classifySocksError(proxy: ProxySettings, target: string, err: Error): SourceError {
  const message = err.message;
  if (/authentication failed|no accepted authentication/i.test(message)) return proxyFailure(proxy, target, 'auth');
  const reply = /rejected connection - (\w+)/i.exec(message)?.[1];
  if (reply !== undefined) {
    // RFC 1928 reply 2, "connection not allowed by ruleset".
    if (reply === 'NotAllowed') return proxyFailure(proxy, target, 'denied');
    return proxyFailure(proxy, target, `SOCKS ${reply}`);
  }
  if (/timed out/i.test(message)) return unreachable(proxy, `no answer within the connect timeout`);
  return unreachable(proxy, `cannot connect (${(err as NodeJS.ErrnoException).code ?? message})`, err);
}
