/**
 * The demo's embedded FTP server (ftp-srv) on 127.0.0.1: serves a directory read-only to one
 * user, so `poller demo` needs no external server.
 */
import type { Socket } from 'node:net';
import { FileSystem, FtpSrv } from 'ftp-srv';

export interface DemoFtpServer {
  readonly port: number;
  close(): Promise<void>;
}

/** ftp-srv wants a bunyan-like logger; the demo keeps quiet. */
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

/** Read-only: the demo server refuses writes, deletes and renames. */
class ReadOnlyFileSystem extends FileSystem {
  override write(): never {
    throw new Error('read-only demo server');
  }
  override delete(): never {
    throw new Error('read-only demo server');
  }
  override rename(): never {
    throw new Error('read-only demo server');
  }
  override mkdir(): never {
    throw new Error('read-only demo server');
  }
}

export async function startDemoFtpServer(opts: {
  root: string;
  user: string;
  password: string;
  port?: number;
}): Promise<DemoFtpServer> {
  const signals = ['SIGINT', 'SIGTERM', 'SIGUSR2', 'uncaughtException', 'unhandledRejection'] as const;
  const before = new Map(signals.map((s) => [s, process.listeners(s as 'SIGINT')]));
  const port = opts.port ?? 0;
  const server = new FtpSrv({
    url: `ftp://127.0.0.1:${port}`,
    pasv_url: '127.0.0.1',
    pasv_min: 40000,
    pasv_max: 49999,
    anonymous: false,
    log: quiet as never,
    greeting: 'poller demo server',
  });
  // ftp-srv installs process-wide handlers that exit the process; the demo handles its own signals.
  for (const s of signals) {
    for (const l of process.listeners(s as 'SIGINT')) if (!before.get(s)?.includes(l)) process.removeListener(s, l);
  }
  const raw = (server as unknown as { server: import('node:net').Server }).server;
  // Nagle's delay on small control replies costs ~40 ms per command round trip.
  raw.on('connection', (socket: Socket) => socket.setNoDelay(true));
  server.on('login', ({ connection, username, password }, resolve, reject) => {
    if (username === opts.user && password === opts.password)
      resolve({ fs: new ReadOnlyFileSystem(connection, { root: opts.root, cwd: '/' }) });
    else reject(new Error('Login incorrect'));
  });
  await server.listen();
  const address = raw.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  return {
    port: actualPort,
    close: async () => {
      await server.close().catch(() => undefined);
    },
  };
}
