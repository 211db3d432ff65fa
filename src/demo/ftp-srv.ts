/**
 * An ftp-srv instance fit for embedding: silent, without the process-wide signal and error
 * handlers ftp-srv installs (they end the process), and with Nagle's delay off on control
 * connections (it costs ~40 ms per command round trip). Used by the demo and the test servers.
 */
import type { Server, Socket } from 'node:net';
import { FtpSrv } from 'ftp-srv';

type FtpSrvOptions = NonNullable<ConstructorParameters<typeof FtpSrv>[0]>;

/** ftp-srv wants a bunyan-like logger. */
const quiet = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
  fatal() {},
  child() {
    return quiet;
  },
};

const PROCESS_EVENTS = ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGUSR2', 'uncaughtException', 'unhandledRejection'] as const;

export function createQuietFtpSrv(options: Omit<FtpSrvOptions, 'log'>): { server: FtpSrv; net: Server } {
  const before = new Map(PROCESS_EVENTS.map((e) => [e, process.listeners(e as 'SIGINT')]));
  const server = new FtpSrv({ ...options, log: quiet as never });
  for (const e of PROCESS_EVENTS) {
    for (const l of process.listeners(e as 'SIGINT')) if (!before.get(e)?.includes(l)) process.removeListener(e, l);
  }
  const net = (server as unknown as { server: Server }).server;
  net.on('connection', (socket: Socket) => socket.setNoDelay(true));
  return { server, net };
}
