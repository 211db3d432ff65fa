/**
 * An in-process FTP (and explicit FTPS) server for the forward plugin's tests: ftp-srv on
 * 127.0.0.1 with a free port, a tmp root, one user, and a log of the file operations the
 * client asked for, so a test can see "written under a temporary name, then renamed".
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';

import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { FileSystem } from 'ftp-srv';
import { createQuietFtpSrv } from '../../src/demo/ftp-srv.js';

export type FsOp =
  | { op: 'write'; path: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'delete'; path: string };

export interface FtpTestServer {
  port: number;
  /** Directory served as `/`. */
  root: string;
  user: string;
  password: string;
  /** File operations in the order the server received them (client paths). */
  ops: FsOp[];
  /** PEM certificate of an FTPS server (trust it with `ca`). */
  certPem?: string;
  /** Logins so far: shows whether a client reused its connections. */
  readonly logins: number;
  /** Drop the control connection when the next `n` uploads start (tests retries). */
  dropUploads(n: number): void;
  /** Accept uploads from now on but never finish storing them: the 226 reply never comes. */
  stallWrites(): void;
  close(): Promise<void>;
}

// ftp-srv logs through bunyan to stdout by default; tests want silence.

/** A throwaway self-signed certificate for 127.0.0.1, made with the openssl CLI. */
export async function makeTestCertificate(dir: string): Promise<{ keyPem: string; certPem: string }> {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { keyPem: await readFile(key, 'utf8'), certPem: await readFile(cert, 'utf8') };
}

export async function startFtpServer(options: { tls?: boolean } = {}): Promise<FtpTestServer> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'poller-forward-ftp-'));
  const certDir = await mkdtemp(path.join(os.tmpdir(), 'poller-forward-cert-'));
  const user = 'relay';
  const password = 'relay-secret';
  const ops: FsOp[] = [];
  let drops = 0;
  let logins = 0;
  let stalled = false;

  class RecordingFs extends FileSystem {
    override write(fileName: string, opts?: { append?: boolean; start?: unknown }) {
      ops.push({ op: 'write', path: path.posix.resolve(this.cwd, fileName) });
      if (drops > 0) {
        drops--;
        (this.connection as unknown as { commandSocket: Socket }).commandSocket.destroy();
        throw new Error('connection dropped by the test');
      }
      if (stalled) return new Writable({ write() {} });
      return super.write(fileName, opts);
    }
    override rename(from: string, to: string) {
      ops.push({ op: 'rename', from: path.posix.resolve(this.cwd, from), to: path.posix.resolve(this.cwd, to) });
      return super.rename(from, to);
    }
    override delete(file: string) {
      ops.push({ op: 'delete', path: path.posix.resolve(this.cwd, file) });
      return super.delete(file);
    }
  }

  const cert = options.tls === true ? await makeTestCertificate(certDir) : undefined;
  // A passive range of its own per server keeps parallel test files from fighting over ports.
  const pasvMin = 40_000 + Math.floor(Math.random() * 200) * 100;
  const { server, net } = createQuietFtpSrv({
    url: 'ftp://127.0.0.1:0',
    pasv_url: '127.0.0.1',
    pasv_min: pasvMin,
    pasv_max: pasvMin + 99,
    greeting: 'forward test server',
    ...(cert === undefined ? {} : { tls: { key: cert.keyPem, cert: cert.certPem } }),
  });
  server.on('login', ({ connection, username, password: given }, resolve, reject) => {
    if (username !== user || given !== password) {
      reject(new Error('bad login'));
      return;
    }
    logins++;
    resolve({ fs: new RecordingFs(connection, { root, cwd: '/' }) });
  });
  await server.listen();
  const port = (net.address() as { port: number }).port;

  return {
    port,
    root,
    user,
    password,
    ops,
    ...(cert === undefined ? {} : { certPem: cert.certPem }),
    get logins() {
      return logins;
    },
    dropUploads(n) {
      drops = n;
    },
    stallWrites() {
      stalled = true;
    },
    async close() {
      await server.close();
      await rm(root, { recursive: true, force: true });
      await rm(certDir, { recursive: true, force: true });
    },
  };
}
