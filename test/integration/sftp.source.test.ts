import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError, SourceError, ThrottledError, TransientError } from '../../src/errors.js';
import { createSftpSource } from '../../src/sources/sftp/sftp-source.js';
import type { Source, SourceConnectOptions } from '../../src/sources/source.js';
import { type SftpTestServer, startSftpServer } from '../helpers/sftp-server.js';
import { collectingLogger, downloadToFile, sftpConnectOptions } from '../helpers/source-test-utils.js';

const MTIME_S = 1_763_900_000; // 2025-11-23T12:13:20Z
const signal = () => new AbortController().signal;

let server: SftpTestServer;
let tmp: string;
let big: Buffer;
const sources: Source[] = [];

function source(over: Partial<SourceConnectOptions> = {}): Source {
  const s = createSftpSource(
    sftpConnectOptions({
      port: server.port,
      user: server.user,
      password: server.password,
      rootPath: '/data',
      hostKey: server.hostKeyFingerprint,
      log: collectingLogger().log,
      ...over,
    }),
  );
  sources.push(s);
  return s;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  server = await startSftpServer();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'poller-sftp-test-'));
  const data = path.join(server.root, 'data');
  await fs.mkdir(path.join(data, '2026', '11'), { recursive: true });
  big = randomBytes(3 * 1024 * 1024 + 12_345);
  await fs.writeFile(path.join(data, 'big.bin'), big);
  await fs.writeFile(path.join(data, 'radar north 01.bufr'), 'spaces');
  await fs.writeFile(path.join(data, 'höhe_ß_雷达.bufr'), 'non-ascii');
  await fs.writeFile(path.join(data, 'empty.bufr'), '');
  await fs.writeFile(path.join(data, '2026', '11', 'vol.bufr'), 'nested');
  await fs.symlink('big.bin', path.join(data, 'link.bin'));
  for (const f of ['big.bin', 'radar north 01.bufr', 'höhe_ß_雷达.bufr', 'empty.bufr', '2026/11/vol.bufr']) {
    await fs.utimes(path.join(data, f), MTIME_S, MTIME_S);
  }
});

afterAll(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await server?.close();
  if (tmp !== undefined) await fs.rm(tmp, { recursive: true, force: true });
});

describe('sftp source against the in-process server', () => {
  it('lists one directory with types, sizes, second-precision mtimes and odd names', async () => {
    const entries = await source().list('', { signal: signal() });
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect([...byName.keys()].sort()).toEqual(
      ['2026', 'big.bin', 'empty.bufr', 'höhe_ß_雷达.bufr', 'link.bin', 'radar north 01.bufr'].sort(),
    );
    expect(byName.get('big.bin')).toEqual({
      path: 'big.bin',
      name: 'big.bin',
      type: 'file',
      sizeBytes: big.length,
      mtimeMs: MTIME_S * 1000,
      mtimePrecision: 's',
    });
    expect(byName.get('2026')?.type).toBe('dir');
    expect(byName.get('link.bin')?.type).toBe('link');
    expect(byName.get('höhe_ß_雷达.bufr')?.sizeBytes).toBe('non-ascii'.length);
    expect(byName.get('radar north 01.bufr')?.path).toBe('radar north 01.bufr');
  });

  it('lists a subdirectory with paths relative to the root', async () => {
    const entries = await source().list('2026/11', { signal: signal() });
    expect(entries.map((e) => e.path)).toEqual(['2026/11/vol.bufr']);
  });

  it('downloads a file byte-exact, and from an offset', async () => {
    const s = source();
    const whole = path.join(tmp, 'whole.bin');
    let counted = 0;
    await downloadToFile(s, 'big.bin', whole, { offsetBytes: 0, onBytes: (n) => (counted += n) });
    expect((await fs.readFile(whole)).equals(big)).toBe(true);
    expect(counted).toBe(big.length);

    const part = path.join(tmp, 'part.bin');
    const offset = 1_000_003;
    await fs.writeFile(part, big.subarray(0, offset));
    await downloadToFile(s, 'big.bin', part, { offsetBytes: offset });
    expect((await fs.readFile(part)).equals(big)).toBe(true);
  });

  it('downloads byte-exact from a server that answers with short reads', async () => {
    server.capReadBytes(10_000);
    try {
      const dest = path.join(tmp, 'short-reads.bin');
      await downloadToFile(source(), 'big.bin', dest, { offsetBytes: 0 });
      expect((await fs.readFile(dest)).equals(big)).toBe(true);
    } finally {
      server.capReadBytes(undefined);
    }
  });

  it('downloads names with spaces and non-ASCII characters, and empty files', async () => {
    const s = source();
    for (const [name, text] of [
      ['radar north 01.bufr', 'spaces'],
      ['höhe_ß_雷达.bufr', 'non-ascii'],
      ['empty.bufr', ''],
    ] as const) {
      const dest = path.join(tmp, 'named.out');
      await downloadToFile(s, name, dest, { offsetBytes: 0 });
      expect(await fs.readFile(dest, 'utf8')).toBe(text);
    }
  });

  it('stats, renames and removes files', async () => {
    const s = source();
    await fs.writeFile(path.join(server.root, 'data', 'move-me.bufr'), 'x');
    expect((await s.stat!('move-me.bufr', { signal: signal() }))?.sizeBytes).toBe(1);
    expect(await s.stat!('nope.bufr', { signal: signal() })).toBeUndefined();
    await s.rename!('move-me.bufr', '2026/moved.bufr', { signal: signal() });
    expect((await s.stat!('2026/moved.bufr', { signal: signal() }))?.path).toBe('2026/moved.bufr');
    await s.remove!('2026/moved.bufr', { signal: signal() });
    expect(await s.stat!('2026/moved.bufr', { signal: signal() })).toBeUndefined();
  });

  it('fails a missing file or directory with a PermanentError', async () => {
    const s = source();
    const err = await rejection(
      s.download('missing.bufr', new Writable({ write: (_c, _e, cb) => cb() }), {
        offsetBytes: 0,
        signal: signal(),
      }),
    );
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: 'POLLER_SFTP_NOT_FOUND' });
    expect(err.message).toContain('missing.bufr');
    const listErr = await rejection(s.list('no/such/dir', { signal: signal() }));
    expect(listErr).toMatchObject({ code: 'POLLER_SFTP_NOT_FOUND' });
  });

  it('passes an error of the destination stream through unchanged', async () => {
    const diskFull = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    let writes = 0;
    const failing = new Writable({
      write: (_chunk, _enc, cb) => (++writes >= 3 ? cb(diskFull) : cb()),
    });
    failing.on('error', () => {});
    const err = await rejection(source().download('big.bin', failing, { offsetBytes: 0, signal: signal() }));
    expect(err).toBe(diskFull);
  });

  it('refuses paths that climb out of the root', async () => {
    const err = await rejection(source().list('../..', { signal: signal() }));
    expect(err).toMatchObject({ code: 'POLLER_SFTP_PATH_OUTSIDE_ROOT' });
  });

  it('logs in with a private key, and with an encrypted key and its passphrase', async () => {
    const plain = source({ password: undefined, privateKey: server.privateKey });
    expect((await plain.list('2026/11', { signal: signal() })).length).toBe(1);
    const encrypted = source({
      password: undefined,
      privateKey: server.encryptedPrivateKey,
      passphrase: server.passphrase,
    });
    expect((await encrypted.list('2026/11', { signal: signal() })).length).toBe(1);
  });

  it('answers a keyboard-interactive password prompt, as PAM servers ask', async () => {
    const kbd = await startSftpServer({ keyboardInteractiveOnly: true });
    try {
      await fs.mkdir(path.join(kbd.root, 'data'));
      await fs.writeFile(path.join(kbd.root, 'data', 'a.bufr'), 'a');
      const opts = { port: kbd.port, user: kbd.user, hostKey: kbd.hostKeyFingerprint };
      expect((await source({ ...opts, password: kbd.password }).list('', { signal: signal() })).length).toBe(1);
      const err = await rejection(source({ ...opts, password: 'wrong-kbd-password' }).list('', { signal: signal() }));
      expect(err).toMatchObject({ code: 'POLLER_SFTP_AUTH_REJECTED' });
      expect(err.message).not.toContain('wrong-kbd-password');
    } finally {
      await Promise.all(sources.splice(0).map((s) => s.close()));
      await kbd.close();
    }
  });

  it('rejects a wrong password with a SourceError that does not contain the password', async () => {
    const wrong = 'not-the-password-XYZ';
    const err = await rejection(source({ password: wrong }).list('', { signal: signal() }));
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ code: 'POLLER_SFTP_AUTH_REJECTED' });
    expect(err.message).not.toContain(wrong);
    expect(err.message).not.toContain('\n');
    expect(err.message).toContain('test-sftp');
  });

  it('rejects a wrong passphrase without leaking it', async () => {
    const wrong = 'wrong-passphrase-QQ';
    const err = await rejection(
      source({ password: undefined, privateKey: server.encryptedPrivateKey, passphrase: wrong }).list('', {
        signal: signal(),
      }),
    );
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ code: 'POLLER_SFTP_KEY_UNREADABLE' });
    expect(err.message).not.toContain(wrong);
  });

  it('refuses to connect without a way to verify the host key', async () => {
    const err = await rejection(source({ hostKey: undefined }).list('', { signal: signal() }));
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ code: 'POLLER_SFTP_HOSTKEY_NOT_CONFIGURED' });
    expect(err.message).toMatch(/hostKey.*knownHosts/);
  });

  it('rejects a host key that does not match the pinned fingerprint', async () => {
    const other = `SHA256:${Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '')}`;
    const err = await rejection(source({ hostKey: other }).list('', { signal: signal() }));
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ code: 'POLLER_SFTP_HOSTKEY_MISMATCH' });
    expect(err.message).toContain(server.hostKeyFingerprint);
  });

  it('accepts the fingerprint written as hex', async () => {
    const hex = Buffer.from(server.hostKeyFingerprint.slice('SHA256:'.length), 'base64').toString('hex');
    expect((await source({ hostKey: hex }).list('2026/11', { signal: signal() })).length).toBe(1);
  });

  it('checks known_hosts: plain and hashed entries pass, an unknown host is rejected', async () => {
    const plainFile = path.join(tmp, 'known_hosts');
    await fs.writeFile(
      plainFile,
      `# test\nother.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK\n${server.knownHostsLine}\n`,
    );
    expect(
      (await source({ hostKey: undefined, knownHosts: plainFile }).list('2026/11', { signal: signal() })).length,
    ).toBe(1);

    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(`[127.0.0.1]:${server.port}`).digest('base64');
    const [, type, key] = server.knownHostsLine.split(' ');
    const hashedFile = path.join(tmp, 'known_hosts_hashed');
    await fs.writeFile(hashedFile, `|1|${salt.toString('base64')}|${hash} ${type} ${key}\n`);
    expect(
      (await source({ hostKey: undefined, knownHosts: hashedFile }).list('2026/11', { signal: signal() })).length,
    ).toBe(1);

    const unknownFile = path.join(tmp, 'known_hosts_other');
    await fs.writeFile(unknownFile, server.knownHostsLine.replace(`[127.0.0.1]:${server.port}`, '[127.0.0.1]:1'));
    const err = await rejection(source({ hostKey: undefined, knownHosts: unknownFile }).list('', { signal: signal() }));
    expect(err).toMatchObject({ code: 'POLLER_SFTP_HOSTKEY_UNKNOWN' });
  });

  it('connects without verification only when insecure is set, with a warning', async () => {
    const { log, lines } = collectingLogger();
    const s = source({ hostKey: undefined, tls: { mode: 'none', insecure: true }, log });
    expect((await s.list('2026/11', { signal: signal() })).length).toBe(1);
    expect(lines.some((l) => l.event === 'source.insecure' && l.level === 40)).toBe(true);
  });

  it('keeps to maxConnections under concurrent downloads', async () => {
    const before = server.connections;
    const s = source({ maxConnections: 2 });
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        downloadToFile(s, 'big.bin', path.join(tmp, `c${i}.bin`), { offsetBytes: 0 }),
      ),
    );
    expect(server.connections - before).toBeLessThanOrEqual(2);
    expect((await fs.readFile(path.join(tmp, 'c5.bin'))).equals(big)).toBe(true);
  });

  it('rejects with the abort reason when the signal fires', async () => {
    const controller = new AbortController();
    const reason = new Error('shutting down');
    controller.abort(reason);
    const err = await rejection(source().list('', { signal: controller.signal }));
    expect(err).toBe(reason);
  });

  it('reports a refused connection as a SourceError', async () => {
    const closedPort = server.port === 1 ? 2 : 1;
    const err = await rejection(source({ port: closedPort }).list('', { signal: signal() }));
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ code: 'POLLER_SFTP_CONNECTION_REFUSED' });
  });

  it('gives up on a server that accepts TCP but never speaks SSH, with a TransientError', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((sock) => sockets.add(sock));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as net.AddressInfo;
      const err = await rejection(source({ port, connectTimeoutMs: 300 }).list('', { signal: signal() }));
      expect(err).toBeInstanceOf(TransientError);
      expect(err).toMatchObject({ code: 'POLLER_SFTP_CONNECT_TIMEOUT' });
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('treats a server that hangs up before the handshake as throttling', async () => {
    const rude = net.createServer((sock) => sock.destroy());
    await new Promise<void>((resolve) => rude.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = rude.address() as net.AddressInfo;
      const err = await rejection(source({ port }).list('', { signal: signal() }));
      expect(err).toBeInstanceOf(ThrottledError);
      expect(err).toMatchObject({ code: 'POLLER_SFTP_DROPPED_BEFORE_HANDSHAKE' });
    } finally {
      await new Promise((resolve) => rude.close(resolve));
    }
  });

  it('closes idempotently', async () => {
    const s = source();
    await s.list('', { signal: signal() });
    await s.close();
    await s.close();
    await expect(s.list('', { signal: signal() })).rejects.toMatchObject({ code: 'POLLER_SFTP_CLOSED' });
  });
});
