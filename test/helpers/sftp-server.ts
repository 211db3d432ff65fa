import { timingSafeEqual } from 'node:crypto';
import type { Stats as FsStats } from 'node:fs';
import fs from 'node:fs/promises';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Attributes, AuthenticationType, Connection, ParsedKey, SFTPWrapper } from 'ssh2';
import ssh2 from 'ssh2';
import { sha256Fingerprint } from '../../src/sources/sftp/host-key.js';

/**
 * An SFTP server in the test process: ssh2's Server with SFTP handlers backed by node:fs on a
 * tmp directory (as in ssh2's test/test-sftp.js). Paths the client sees are rooted at that
 * directory: `/a/b` is `<root>/a/b`.
 */

const { OPEN_MODE, STATUS_CODE, flagsToString } = ssh2.utils.sftp;

/** A running server and what a client needs to reach it. */
export interface SftpTestServer {
  readonly port: number;
  /** The tmp directory served as `/`. */
  readonly root: string;
  readonly user: string;
  readonly password: string;
  /** `SHA256:...` of the host key, as `ssh-keygen -lf` prints it. */
  readonly hostKeyFingerprint: string;
  /** A known_hosts line for this server (`[127.0.0.1]:port ssh-ed25519 AAAA...`). */
  readonly knownHostsLine: string;
  /** Client private key (OpenSSH format, unencrypted) that the server accepts. */
  readonly privateKey: Buffer;
  /** A second accepted client key, encrypted with `passphrase`. */
  readonly encryptedPrivateKey: Buffer;
  readonly passphrase: string;
  /** Bytes served by READ since start. */
  readonly bytesRead: number;
  /** Connections accepted since start. */
  readonly connections: number;
  /** One-shot fault: the next connection to pass this many READ bytes is cut (socket destroyed). */
  dropAfterBytes(bytes: number): void;
  /** Serve at most this many bytes per READ (short reads, as some servers do); undefined: no cap. */
  capReadBytes(bytes: number | undefined): void;
  /** Cuts every open connection now (sockets destroyed, no SSH disconnect). */
  dropConnections(): void;
  /** One-shot fault: the next connection to pass this many READ bytes stops answering READs. */
  stallAfterBytes(bytes: number): void;
  close(): Promise<void>;
}

type Handle = { kind: 'file'; fh: fs.FileHandle } | { kind: 'dir'; dir: string; sent: boolean };

function statusOf(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return STATUS_CODE.NO_SUCH_FILE;
  if (code === 'EACCES' || code === 'EPERM') return STATUS_CODE.PERMISSION_DENIED;
  return STATUS_CODE.FAILURE;
}

function attrsOf(st: FsStats): Attributes {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

function longnameOf(name: string, st: FsStats): string {
  const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : '-';
  return `${kind}rw-r--r-- 1 test test ${st.size} Jan  1 00:00 ${name}`;
}

function equalBuffers(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function firstKey(parsed: ReturnType<typeof ssh2.utils.parseKey>): ParsedKey {
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error) throw new Error('generated key does not parse');
  return key;
}

/**
 * An ed25519 key pair that parses back. ssh2 1.17's generator drops a leading zero byte of the
 * public key (about 1 key in 256 comes out 31 bytes long and unusable), so draw again.
 */
export function generateEd25519(options: { passphrase?: string } = {}): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const keys =
      options.passphrase === undefined
        ? ssh2.utils.generateKeyPairSync('ed25519')
        : ssh2.utils.generateKeyPairSync('ed25519', {
            passphrase: options.passphrase,
            cipher: 'aes256-ctr',
            rounds: 4,
          });
    const priv = ssh2.utils.parseKey(keys.private, options.passphrase);
    const pub = ssh2.utils.parseKey(keys.public);
    if (!(priv instanceof Error) && !(pub instanceof Error)) return keys;
  }
  throw new Error('could not generate a usable ed25519 key');
}

/** Options of the test server. */
export interface SftpTestServerOptions {
  /** Refuse the 'password' method and ask for the password by keyboard-interactive, as PAM setups do. */
  keyboardInteractiveOnly?: boolean;
}

/** Starts a server on 127.0.0.1 with a fresh tmp root, host key and client keys. */
export async function startSftpServer(options: SftpTestServerOptions = {}): Promise<SftpTestServer> {
  const user = 'poller';
  const password = 'correct horse battery staple';
  const passphrase = 'key passphrase 42';
  const hostKey = generateEd25519();
  const clientKey = generateEd25519();
  const encryptedKey = generateEd25519({ passphrase });
  const allowedKeys = [clientKey.public, encryptedKey.public].map((k) => firstKey(ssh2.utils.parseKey(k)));
  const hostBlob = firstKey(ssh2.utils.parseKey(hostKey.private)).getPublicSSH();
  const root = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'poller-sftp-')));

  let bytesRead = 0;
  let connections = 0;
  let dropAfter: number | undefined;
  let stallAfter: number | undefined;
  let readCap: number | undefined;
  const clients = new Set<Connection>();

  const toLocal = (p: string): string => path.join(root, path.posix.normalize(`/${p}`));
  const toVirtual = (p: string): string => path.posix.normalize(`/${p}`);

  function serveSftp(sftp: SFTPWrapper, client: Connection): void {
    const handles = new Map<number, Handle>();
    let nextHandle = 0;
    let servedBytes = 0;
    let stalled = false;
    const newHandle = (h: Handle): Buffer => {
      const id = nextHandle++;
      handles.set(id, h);
      const buf = Buffer.alloc(4);
      buf.writeUInt32BE(id, 0);
      return buf;
    };
    const handleOf = (buf: Buffer): [number, Handle | undefined] => {
      const id = buf.length === 4 ? buf.readUInt32BE(0) : -1;
      return [id, handles.get(id)];
    };
    const fail = (reqid: number, err: unknown): void => {
      sftp.status(reqid, statusOf(err));
    };

    sftp.on('OPEN', (reqid, filename, flags) => {
      const mode = flagsToString(flags) ?? 'r';
      const create = (flags & OPEN_MODE.CREAT) !== 0;
      fs.open(toLocal(filename), create ? mode : mode.replace('w', 'r+'))
        .then((fh) => sftp.handle(reqid, newHandle({ kind: 'file', fh })))
        .catch((err: unknown) => fail(reqid, err));
    });
    sftp.on('READ', (reqid, handle, offset, length) => {
      const [, h] = handleOf(handle);
      if (h?.kind !== 'file') return sftp.status(reqid, STATUS_CODE.FAILURE);
      if (stalled) return;
      const buf = Buffer.alloc(Math.min(length, readCap ?? length));
      h.fh
        .read(buf, 0, buf.length, offset)
        .then(({ bytesRead: n }) => {
          if (n === 0) return sftp.status(reqid, STATUS_CODE.EOF);
          bytesRead += n;
          servedBytes += n;
          if (dropAfter !== undefined && servedBytes >= dropAfter) {
            dropAfter = undefined;
            // An abrupt cut, not a polite SSH disconnect: what a flaky link does.
            (client as unknown as { _sock: Socket })._sock.destroy();
            return;
          }
          if (stallAfter !== undefined && servedBytes >= stallAfter) {
            stallAfter = undefined;
            stalled = true;
            return;
          }
          sftp.data(reqid, buf.subarray(0, n));
        })
        .catch((err: unknown) => fail(reqid, err));
    });
    sftp.on('WRITE', (reqid, handle, offset, data) => {
      const [, h] = handleOf(handle);
      if (h?.kind !== 'file') return sftp.status(reqid, STATUS_CODE.FAILURE);
      h.fh
        .write(data, 0, data.length, offset)
        .then(() => sftp.status(reqid, STATUS_CODE.OK))
        .catch((err: unknown) => fail(reqid, err));
    });
    sftp.on('FSTAT', (reqid, handle) => {
      const [, h] = handleOf(handle);
      if (h?.kind !== 'file') return sftp.status(reqid, STATUS_CODE.FAILURE);
      h.fh
        .stat()
        .then((st) => sftp.attrs(reqid, attrsOf(st)))
        .catch((err: unknown) => fail(reqid, err));
    });
    sftp.on('CLOSE', (reqid, handle) => {
      const [id, h] = handleOf(handle);
      if (h === undefined) return sftp.status(reqid, STATUS_CODE.FAILURE);
      handles.delete(id);
      if (h.kind === 'dir') return sftp.status(reqid, STATUS_CODE.OK);
      h.fh
        .close()
        .then(() => sftp.status(reqid, STATUS_CODE.OK))
        .catch((err: unknown) => fail(reqid, err));
    });
    sftp.on('OPENDIR', (reqid, dirPath) => {
      const local = toLocal(dirPath);
      fs.stat(local)
        .then((st) => {
          if (!st.isDirectory()) return sftp.status(reqid, STATUS_CODE.FAILURE);
          sftp.handle(reqid, newHandle({ kind: 'dir', dir: local, sent: false }));
        })
        .catch((err: unknown) => fail(reqid, err));
    });
    sftp.on('READDIR', (reqid, handle) => {
      const [, h] = handleOf(handle);
      if (h?.kind !== 'dir') return sftp.status(reqid, STATUS_CODE.FAILURE);
      if (h.sent) return sftp.status(reqid, STATUS_CODE.EOF);
      h.sent = true;
      (async () => {
        const names = await fs.readdir(h.dir);
        const out = [];
        for (const filename of names) {
          const st = await fs.lstat(path.join(h.dir, filename));
          out.push({ filename, longname: longnameOf(filename, st), attrs: attrsOf(st) });
        }
        if (out.length === 0) return sftp.status(reqid, STATUS_CODE.EOF);
        sftp.name(reqid, out);
      })().catch((err: unknown) => fail(reqid, err));
    });
    for (const [event, fn] of [
      ['STAT', fs.stat],
      ['LSTAT', fs.lstat],
    ] as const) {
      sftp.on(event, (reqid: number, p: string) => {
        fn(toLocal(p))
          .then((st) => sftp.attrs(reqid, attrsOf(st)))
          .catch((err: unknown) => fail(reqid, err));
      });
    }
    sftp.on('REALPATH', (reqid, p) => {
      const v = toVirtual(p);
      sftp.name(reqid, [{ filename: v, longname: v, attrs: {} as Attributes }]);
    });
    const simple = (reqid: number, work: Promise<unknown>): void => {
      work.then(() => sftp.status(reqid, STATUS_CODE.OK)).catch((err: unknown) => fail(reqid, err));
    };
    sftp.on('REMOVE', (reqid, p) => simple(reqid, fs.unlink(toLocal(p))));
    sftp.on('RMDIR', (reqid, p) => simple(reqid, fs.rmdir(toLocal(p))));
    sftp.on('MKDIR', (reqid, p) => simple(reqid, fs.mkdir(toLocal(p))));
    sftp.on('RENAME', (reqid, from, to) => simple(reqid, fs.rename(toLocal(from), toLocal(to))));
    sftp.on('SETSTAT', (reqid) => sftp.status(reqid, STATUS_CODE.OK));
    sftp.on('FSETSTAT', (reqid) => sftp.status(reqid, STATUS_CODE.OK));
    sftp.on('close', () => {
      for (const h of handles.values()) if (h.kind === 'file') h.fh.close().catch(() => {});
      handles.clear();
    });
  }

  const server = new ssh2.Server({ hostKeys: [hostKey.private] }, (client) => {
    connections += 1;
    clients.add(client);
    client.on('close', () => clients.delete(client));
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      const userOk = equalBuffers(Buffer.from(ctx.username), Buffer.from(user));
      const methods: AuthenticationType[] = options.keyboardInteractiveOnly
        ? ['keyboard-interactive', 'publickey']
        : ['password', 'publickey'];
      if (ctx.method === 'password' && !options.keyboardInteractiveOnly) {
        if (userOk && equalBuffers(Buffer.from(ctx.password), Buffer.from(password))) return ctx.accept();
      } else if (ctx.method === 'keyboard-interactive' && options.keyboardInteractiveOnly) {
        ctx.prompt([{ prompt: 'Password: ', echo: false }], (answers) => {
          const answer = answers[0];
          if (userOk && answer !== undefined && equalBuffers(Buffer.from(answer), Buffer.from(password))) ctx.accept();
          else ctx.reject(methods);
        });
        return;
      } else if (ctx.method === 'publickey') {
        const key = allowedKeys.find((k) => k.type === ctx.key.algo && equalBuffers(ctx.key.data, k.getPublicSSH()));
        if (
          userOk &&
          key !== undefined &&
          (ctx.signature === undefined || key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true)
        ) {
          return ctx.accept();
        }
      }
      ctx.reject(methods);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('sftp', (acceptSftp) => serveSftp(acceptSftp(), client));
      });
    });
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.removeListener('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });

  return {
    port,
    root,
    user,
    password,
    passphrase,
    hostKeyFingerprint: sha256Fingerprint(hostBlob),
    knownHostsLine: `[127.0.0.1]:${port} ssh-ed25519 ${hostBlob.toString('base64')}`,
    privateKey: Buffer.from(clientKey.private),
    encryptedPrivateKey: Buffer.from(encryptedKey.private),
    get bytesRead() {
      return bytesRead;
    },
    get connections() {
      return connections;
    },
    dropAfterBytes(bytes: number) {
      dropAfter = bytes;
    },
    capReadBytes(bytes: number | undefined) {
      readCap = bytes;
    },
    dropConnections() {
      for (const c of clients) (c as unknown as { _sock: Socket })._sock.destroy();
    },
    stallAfterBytes(bytes: number) {
      stallAfter = bytes;
    },
    async close() {
      for (const c of clients) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}
