/**
 * How basic-ftp opens passive data connections for the pool: EPSV, else PASV, with the first mode
 * that works kept per connection, and optionally one opened ahead for the next transfer. Direct: to the control connection's host. Through a proxy: a
 * tunnel of its own to the source's host for every data connection, TLS over it as basic-ftp
 * does directly (same options, same session, so servers that require session reuse accept it).
 */
import type { Socket } from 'node:net';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import type { Client, FTPContext, FTPResponse, TransferStrategy } from 'basic-ftp';
import { connectForPassiveTransfer, parseEpsvResponse, parsePasvResponse } from 'basic-ftp/dist/transfer.js';
import type { ProxySettings } from '../proxy/proxy-settings.js';
import { openTunnel } from '../proxy/source-proxy.js';
import type { SourceConnectOptions } from '../source.js';
import { epsvPort, pasvPort } from './retrieve.js';

/** Tries EPSV, then PASV on the same connection; remembers which one worked. */
function firstWorkingMode(epsv: TransferStrategy, pasv: TransferStrategy): TransferStrategy {
  let chosen: TransferStrategy | undefined;
  return async (ftp) => {
    if (chosen !== undefined) return await chosen(ftp);
    try {
      const res = await epsv(ftp);
      chosen = epsv;
      return res;
    } catch (err) {
      // A refused or garbled EPSV reply leaves the connection usable: try PASV on it.
      if (ftp.closed) throw err;
      const res = await pasv(ftp);
      chosen = pasv;
      return res;
    }
  };
}

/**
 * Direct passive mode. The address in a PASV reply is ignored: servers behind NAT announce a
 * private one there, and connecting anywhere else than the control host is the FTP bounce risk
 * basic-ftp refuses by default (it would fail such servers instead).
 */
export function passiveToControlHost(): TransferStrategy {
  const via =
    (command: 'EPSV' | 'PASV'): TransferStrategy =>
    async (ftp) => {
      const res = await ftp.request(command);
      const port = passivePort(command, res.message);
      const host = ftp.socket.remoteAddress?.replace(/^::ffff:/i, '');
      if (host === undefined) throw new Error('control connection lost before the data connection opened');
      await connectForPassiveTransfer(host, port, ftp);
      return res;
    };
  return firstWorkingMode(via('EPSV'), via('PASV'));
}

/** The port of an EPSV/PASV reply: read cheaply, with basic-ftp's parsers for unusual shapes. */
function passivePort(command: 'EPSV' | 'PASV', message: string): number {
  const port =
    command === 'EPSV'
      ? (epsvPort(message) ?? parseEpsvResponse(message))
      : (pasvPort(message) ?? parsePasvResponse(message).port);
  if (!port) throw new Error(`Can't parse ${command} response: ${message}`);
  return port;
}

/**
 * A data connection opened ahead stays usable this long; an older one is closed and a new one
 * opened (servers time out an unused passive port, vsftpd after accept_timeout, 60 s).
 */
const OPENED_AHEAD_MAX_AGE_MS = 5000;

interface OpenedAhead {
  readonly socket: Socket;
  readonly reply: FTPResponse;
  readonly atMs: number;
}

const openedAhead = new WeakMap<FTPContext, OpenedAhead>();

/**
 * Lets a strategy's data connection be opened before it is needed (openDataConnectionAhead): the
 * next transfer of the control connection takes it instead of a PASV/EPSV round trip and a
 * connect of its own, so a file's transfer starts as soon as the previous one ended.
 */
export function withOpenAhead(strategy: TransferStrategy): TransferStrategy {
  return async (ftp) => {
    const ahead = openedAhead.get(ftp);
    if (ahead !== undefined) {
      openedAhead.delete(ftp);
      // Usable unless the server has closed it meanwhile (or it is old enough for that to come).
      const { socket } = ahead;
      const open = !socket.destroyed && !socket.readableEnded && socket.readable;
      if (ftp.dataSocket === socket && open && Date.now() - ahead.atMs < OPENED_AHEAD_MAX_AGE_MS) return ahead.reply;
      ftp.dataSocket = undefined;
    }
    return await strategy(ftp);
  };
}

/**
 * Opens the data connection for the next transfer now (the strategy must be wrapped with
 * withOpenAhead). The caller awaits the promise before the next command on this client.
 */
export async function openDataConnectionAhead(client: Client): Promise<void> {
  const ftp = client.ftp;
  const reply = await client.prepareTransfer(ftp);
  const socket = ftp.dataSocket;
  if (socket !== undefined) openedAhead.set(ftp, { socket, reply, atMs: Date.now() });
}

/** Passive mode through a proxy: each data connection is a tunnel to the source's host and the announced port. */
export function passiveThroughProxy(
  proxy: ProxySettings,
  opts: Pick<SourceConnectOptions, 'host' | 'connectTimeoutMs'>,
): TransferStrategy {
  const via =
    (command: 'EPSV' | 'PASV'): TransferStrategy =>
    async (ftp) => {
      const res = await ftp.request(command);
      const port = passivePort(command, res.message);
      const raw = await openTunnel(opts, proxy, opts.host, port);
      attachDataSocket(ftp, raw);
      return res;
    };
  return firstWorkingMode(via('EPSV'), via('PASV'));
}

/** Hands a tunnelled data connection to basic-ftp, under TLS when the control connection has it. */
function attachDataSocket(ftp: FTPContext, raw: Socket): void {
  if (!(ftp.socket instanceof TLSSocket)) {
    // Left paused: basic-ftp pipes it once the transfer starts, and no byte is lost before.
    ftp.dataSocket = raw;
    return;
  }
  raw.resume();
  const control = ftp.socket;
  const tlsSocket = tlsConnect({
    ...ftp.tlsOptions,
    socket: raw,
    session: ftp.tlsSessionStore ?? control.getSession(),
  });
  // TLS 1.3 tickets are single-use: the next data connection resumes with the newest one.
  tlsSocket.on('session', (session: Buffer) => {
    ftp.tlsSessionStore = session;
  });
  ftp.dataSocket = tlsSocket;
}

/** basic-ftp's greeting handler: public behaviour (connect() uses it), private name. */
interface GreetingClient {
  _handleConnectResponse(): Promise<FTPResponse>;
}

/**
 * Connects the control connection over a tunnel, as `connect` / `connectImplicitTLS` would
 * directly; explicit TLS (AUTH TLS) then upgrades it with `useTLS` as usual.
 */
export async function connectControlOverTunnel(
  client: Client,
  raw: Socket,
  implicitTls: import('node:tls').ConnectionOptions | undefined,
): Promise<FTPResponse> {
  const ftp = client.ftp;
  ftp.reset();
  if (implicitTls !== undefined) {
    raw.resume();
    ftp.socket = tlsConnect({ ...implicitTls, socket: raw });
    // Set after the socket: the setter resets them. Data connections resume this session.
    ftp.tlsOptions = implicitTls;
  } else ftp.socket = raw;
  const greeting = (client as unknown as GreetingClient)._handleConnectResponse();
  raw.resume();
  return await greeting;
}
