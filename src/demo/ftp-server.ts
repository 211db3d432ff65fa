/**
 * The demo's embedded FTP server (ftp-srv) on 127.0.0.1: serves a directory read-only to one
 * user, so `poller demo` needs no external server.
 */
import { FileSystem } from 'ftp-srv';
import { createQuietFtpSrv } from './ftp-srv.js';

export interface DemoFtpServer {
  readonly port: number;
  close(): Promise<void>;
}

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
  /** Address to listen on; @default 127.0.0.1. Passive replies name it (EPSV needs no address). */
  host?: string;
}): Promise<DemoFtpServer> {
  const port = opts.port ?? 0;
  const host = opts.host ?? '127.0.0.1';
  const { server, net: raw } = createQuietFtpSrv({
    url: `ftp://${host}:${port}`,
    pasv_url: host === '0.0.0.0' ? '127.0.0.1' : host,
    pasv_min: 40000,
    pasv_max: 49999,
    anonymous: false,
    greeting: 'poller demo server',
  });
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
