/**
 * How basic-ftp opens passive data connections for the pool: EPSV, else PASV, with the first mode
 * that works kept per connection. Direct: to the control connection's host. Through a proxy: a
 * tunnel of its own to the source's host for every data connection, TLS over it as basic-ftp
 * does directly (same options, same session, so servers that require session reuse accept it).
 */
import type { Socket } from 'node:net';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { type Client, enterPassiveModeIPv6, type FTPContext, type FTPResponse, type TransferStrategy } from 'basic-ftp';
import { connectForPassiveTransfer, parseEpsvResponse, parsePasvResponse } from 'basic-ftp/dist/transfer.js';
import type { ProxySettings } from '../proxy/proxy-settings.js';
import { openTunnel } from '../proxy/source-proxy.js';
import type { SourceConnectOptions } from '../source.js';

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
  const pasv: TransferStrategy = async (ftp) => {
    const res = await ftp.request('PASV');
    const { port } = parsePasvResponse(res.message);
    const host = ftp.socket.remoteAddress?.replace(/^::ffff:/i, '');
    if (host === undefined) throw new Error('control connection lost before the data connection opened');
    await connectForPassiveTransfer(host, port, ftp);
    return res;
  };
  return firstWorkingMode(enterPassiveModeIPv6, pasv);
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
      const port = command === 'EPSV' ? parseEpsvResponse(res.message) : parsePasvResponse(res.message).port;
      if (!port) throw new Error(`Can't parse ${command} response: ${res.message}`);
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
