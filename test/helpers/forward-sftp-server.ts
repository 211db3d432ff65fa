/**
 * An in-process SFTP server for the forward plugin's tests: ssh2's Server with SFTP handlers
 * backed by node:fs under a tmp root (as in ssh2's test/test-sftp.js), one user with a password
 * or key, and a log of the file operations in the order received. RENAME refuses an existing
 * target, as OpenSSH's SFTP v3 rename does.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { type FileHandle, mkdir, mkdtemp, open, rename, rm, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Attributes, Connection, ParsedKey, SFTPWrapper } from 'ssh2';
import ssh2 from 'ssh2';
import type { FsOp } from './forward-ftp-server.js';
import { generateEd25519 } from './sftp-server.js';

const { STATUS_CODE, OPEN_MODE } = ssh2.utils.sftp;

export interface SftpTestServer {
  port: number;
  root: string;
  user: string;
  password: string;
  /** `SHA256:…` fingerprint of the host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** A client key pair the server accepts for `user` (OpenSSH private key text). */
  clientPrivateKey: string;
  ops: FsOp[];
  /** Drop the connection when the next `n` uploads open their file (tests retries). */
  dropUploads(n: number): void;
  /** Leave WRITE requests unanswered from now on: an upload hangs mid-file. */
  stallWrites(): void;
  close(): Promise<void>;
}

function same(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function toAttrs(s: Stats): Attributes {
  return {
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    size: s.size,
    atime: Math.floor(s.atimeMs / 1000),
    mtime: Math.floor(s.mtimeMs / 1000),
  };
}

export async function startSftpServer(): Promise<SftpTestServer> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'poller-forward-sftp-'));
  const user = 'relay';
  const password = 'relay-secret';
  const ops: FsOp[] = [];
  let drops = 0;
  let stalled = false;

  const hostKeys = generateEd25519();
  const hostPublic = ssh2.utils.parseKey(hostKeys.public) as ParsedKey;
  const hostKeyFingerprint = `SHA256:${createHash('sha256').update(hostPublic.getPublicSSH()).digest('base64').replace(/=+$/, '')}`;
  const clientKeys = generateEd25519();
  const clientPublic = ssh2.utils.parseKey(clientKeys.public) as ParsedKey;

  // Client paths are absolute within the root; `..` cannot climb out of it.
  const fsPath = (clientPath: string) => path.join(root, path.posix.resolve('/', clientPath));
  const connections = new Set<Connection>();

  const server = new ssh2.Server({ hostKeys: [hostKeys.private] }, (client) => {
    connections.add(client);
    client.on('close', () => connections.delete(client));
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      if (ctx.username !== user) return ctx.reject();
      if (ctx.method === 'password' && same(Buffer.from(ctx.password), Buffer.from(password))) return ctx.accept();
      if (
        ctx.method === 'publickey' &&
        ctx.key.algo === clientPublic.type &&
        same(ctx.key.data, clientPublic.getPublicSSH())
      ) {
        if (ctx.signature === undefined || ctx.blob === undefined) return ctx.accept();
        if (clientPublic.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
      }
      return ctx.reject(['password', 'publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().on('sftp', (acceptSftp) => serveSftp(acceptSftp(), client));
      });
    });
  });

  function serveSftp(sftp: SFTPWrapper, client: Connection) {
    const handles = new Map<number, FileHandle>();
    let nextHandle = 0;
    const handleOf = (buf: Buffer) => handles.get(buf.readUInt32BE(0));
    const fail = (reqId: number, err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      sftp.status(
        reqId,
        code === 'ENOENT'
          ? STATUS_CODE.NO_SUCH_FILE
          : code === 'EACCES'
            ? STATUS_CODE.PERMISSION_DENIED
            : STATUS_CODE.FAILURE,
        String(code ?? err),
      );
    };
    const statReply = (reqId: number, p: string) =>
      stat(fsPath(p)).then(
        (s) => sftp.attrs(reqId, toAttrs(s)),
        (err: unknown) => fail(reqId, err),
      );

    sftp.on('REALPATH', (reqId, p) => {
      sftp.name(reqId, [{ filename: path.posix.resolve('/', p), longname: '', attrs: {} as Attributes }]);
    });
    sftp.on('STAT', statReply);
    sftp.on('LSTAT', statReply);
    sftp.on('OPEN', (reqId, filename, flags) => {
      const writing = (flags & OPEN_MODE.WRITE) !== 0;
      if (writing) {
        ops.push({ op: 'write', path: path.posix.resolve('/', filename) });
        if (drops > 0) {
          drops--;
          client.end();
          return;
        }
      }
      const mode = writing
        ? constants.O_WRONLY | constants.O_CREAT | ((flags & OPEN_MODE.TRUNC) !== 0 ? constants.O_TRUNC : 0)
        : constants.O_RDONLY;
      open(fsPath(filename), mode).then(
        (fh) => {
          const id = nextHandle++;
          handles.set(id, fh);
          const buf = Buffer.alloc(4);
          buf.writeUInt32BE(id, 0);
          sftp.handle(reqId, buf);
        },
        (err: unknown) => fail(reqId, err),
      );
    });
    sftp.on('WRITE', (reqId, handle, offset, data) => {
      if (stalled) return;
      const fh = handleOf(handle);
      if (fh === undefined) return sftp.status(reqId, STATUS_CODE.FAILURE);
      fh.write(data, 0, data.length, offset).then(
        () => sftp.status(reqId, STATUS_CODE.OK),
        (err: unknown) => fail(reqId, err),
      );
    });
    sftp.on('FSTAT', (reqId, handle) => {
      const fh = handleOf(handle);
      if (fh === undefined) return sftp.status(reqId, STATUS_CODE.FAILURE);
      fh.stat().then(
        (s) => sftp.attrs(reqId, toAttrs(s)),
        (err: unknown) => fail(reqId, err),
      );
    });
    sftp.on('FSETSTAT', (reqId) => sftp.status(reqId, STATUS_CODE.OK));
    sftp.on('SETSTAT', (reqId) => sftp.status(reqId, STATUS_CODE.OK));
    sftp.on('CLOSE', (reqId, handle) => {
      const id = handle.readUInt32BE(0);
      const fh = handles.get(id);
      handles.delete(id);
      if (fh === undefined) return sftp.status(reqId, STATUS_CODE.FAILURE);
      fh.close().then(
        () => sftp.status(reqId, STATUS_CODE.OK),
        (err: unknown) => fail(reqId, err),
      );
    });
    sftp.on('MKDIR', (reqId, p) => {
      mkdir(fsPath(p)).then(
        () => sftp.status(reqId, STATUS_CODE.OK),
        (err: unknown) => fail(reqId, err),
      );
    });
    sftp.on('RENAME', (reqId, from, to) => {
      ops.push({ op: 'rename', from: path.posix.resolve('/', from), to: path.posix.resolve('/', to) });
      stat(fsPath(to)).then(
        () => sftp.status(reqId, STATUS_CODE.FAILURE, 'target exists'),
        () =>
          rename(fsPath(from), fsPath(to)).then(
            () => sftp.status(reqId, STATUS_CODE.OK),
            (err: unknown) => fail(reqId, err),
          ),
      );
    });
    sftp.on('REMOVE', (reqId, p) => {
      ops.push({ op: 'delete', path: path.posix.resolve('/', p) });
      unlink(fsPath(p)).then(
        () => sftp.status(reqId, STATUS_CODE.OK),
        (err: unknown) => fail(reqId, err),
      );
    });
    sftp.on('close', () => {
      for (const fh of handles.values()) void fh.close();
      handles.clear();
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  return {
    port,
    root,
    user,
    password,
    hostKeyFingerprint,
    clientPrivateKey: clientKeys.private,
    ops,
    dropUploads(n) {
      drops = n;
    },
    stallWrites() {
      stalled = true;
    },
    async close() {
      for (const c of connections) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}
