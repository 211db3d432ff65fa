import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError, SourceError } from '../../src/errors.js';
import { createSftpSource } from '../../src/sources/sftp/sftp-source.js';
import type { Source, SourceConnectOptions } from '../../src/sources/source.js';
import { collectingLogger, downloadToFile, sftpConnectOptions } from '../helpers/source-test-utils.js';
import { type SshdServer, sshdAvailability, startSshd } from '../helpers/sshd.js';

const availability = sshdAvailability();
const { CI } = process.env;
const onCi = CI === 'true';
if (!availability.available && !onCi) {
  console.warn(`NOTICE: skipping real sshd tests: ${availability.reason}`);
}

const MTIME_S = 1_763_900_000;
const signal = () => new AbortController().signal;

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe.runIf(onCi && !availability.available)('real sshd under CI', () => {
  it('is installed (scripts/install-test-servers.sh installs openssh-server)', () => {
    expect.fail(`real sshd tests cannot run: ${availability.reason}`);
  });
});

describe.runIf(availability.available)('sftp source against real OpenSSH sshd', () => {
  let sshd: SshdServer;
  let tmp: string;
  let big: Buffer;
  const sources: Source[] = [];

  function source(over: Partial<SourceConnectOptions> = {}): Source {
    const s = createSftpSource(
      sftpConnectOptions({
        port: sshd.port,
        user: sshd.user,
        password: sshd.password,
        rootPath: path.join(sshd.root, 'data'),
        hostKey: sshd.hostKeyFingerprint,
        log: collectingLogger().log,
        ...over,
      }),
    );
    sources.push(s);
    return s;
  }

  beforeAll(async () => {
    sshd = await startSshd();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'poller-sshd-test-'));
    const data = path.join(sshd.root, 'data');
    await fs.mkdir(path.join(data, '2026', '11'), { recursive: true });
    // Over 64 READs of 128 KiB: the read buffers come back from the file stream and are reused.
    big = randomBytes(20 * 1024 * 1024 + 4321);
    await fs.writeFile(path.join(data, 'big.bin'), big);
    await fs.writeFile(path.join(data, 'radar north 01.bufr'), 'spaces');
    await fs.writeFile(path.join(data, 'höhe_ß_雷达.bufr'), 'non-ascii');
    await fs.writeFile(path.join(data, '2026', '11', 'vol.bufr'), 'nested');
    for (const f of ['big.bin', 'radar north 01.bufr', 'höhe_ß_雷达.bufr']) {
      await fs.utimes(path.join(data, f), MTIME_S, MTIME_S);
    }
    // Mode 600 and owned by the test process: the sshd user may not read it.
    await fs.writeFile(path.join(data, 'secret.bufr'), 'x', { mode: 0o600 });
  });

  afterAll(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await sshd?.stop();
    if (tmp !== undefined) await fs.rm(tmp, { recursive: true, force: true });
  });

  it('lists one directory with sizes, mtimes and odd names', async () => {
    const entries = await source().list('', { signal: signal() });
    const byName = new Map(entries.map((e) => [e.name, e]));
    expect([...byName.keys()].sort()).toEqual(
      ['2026', 'big.bin', 'höhe_ß_雷达.bufr', 'radar north 01.bufr', 'secret.bufr'].sort(),
    );
    expect(byName.get('big.bin')).toMatchObject({
      type: 'file',
      sizeBytes: big.length,
      mtimeMs: MTIME_S * 1000,
      mtimePrecision: 's',
    });
    expect(byName.get('2026')?.type).toBe('dir');
    expect((await source().list('2026/11', { signal: signal() })).map((e) => e.path)).toEqual(['2026/11/vol.bufr']);
  });

  it('downloads byte-exact, from an offset, and odd names', async () => {
    const s = source();
    const whole = path.join(tmp, 'whole.bin');
    await downloadToFile(s, 'big.bin', whole, { offsetBytes: 0 });
    expect((await fs.readFile(whole)).equals(big)).toBe(true);

    const part = path.join(tmp, 'part.bin');
    const offset = 2_500_001;
    await fs.writeFile(part, big.subarray(0, offset));
    await downloadToFile(s, 'big.bin', part, { offsetBytes: offset });
    expect((await fs.readFile(part)).equals(big)).toBe(true);

    const odd = path.join(tmp, 'odd.out');
    await downloadToFile(s, 'höhe_ß_雷达.bufr', odd, { offsetBytes: 0 });
    expect(await fs.readFile(odd, 'utf8')).toBe('non-ascii');
    await downloadToFile(s, 'radar north 01.bufr', odd, { offsetBytes: 0 });
    expect(await fs.readFile(odd, 'utf8')).toBe('spaces');
  });

  it('fails missing and unreadable files with a PermanentError', async () => {
    const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
    const s = source();
    const missing = await rejection(s.download('missing.bufr', sink(), { offsetBytes: 0, signal: signal() }));
    expect(missing).toBeInstanceOf(PermanentError);
    expect(missing).toMatchObject({ code: 'POLLER_SFTP_NOT_FOUND' });
    const secret = await rejection(s.download('secret.bufr', sink(), { offsetBytes: 0, signal: signal() }));
    expect(secret).toBeInstanceOf(PermanentError);
    expect(secret).toMatchObject({ code: 'POLLER_SFTP_PERMISSION_DENIED' });
  });

  it('stats files, and refuses to remove in a directory the user may not write', async () => {
    const s = source();
    expect(await s.stat!('big.bin', { signal: signal() })).toMatchObject({ sizeBytes: big.length, type: 'file' });
    expect(await s.stat!('missing.bufr', { signal: signal() })).toBeUndefined();
    const denied = await rejection(s.remove!('big.bin', { signal: signal() }));
    expect(denied).toBeInstanceOf(PermanentError);
    expect(denied).toMatchObject({ code: 'POLLER_SFTP_PERMISSION_DENIED' });
  });

  it('logs in with a private key', async () => {
    const s = source({ password: undefined, privateKey: sshd.privateKey });
    expect((await s.list('2026/11', { signal: signal() })).length).toBe(1);
  });

  it('rejects a wrong password with a SourceError that does not contain it', async () => {
    const wrong = 'wrong-password-for-sshd';
    const err = await rejection(source({ password: wrong }).list('', { signal: signal() }));
    expect(err).toBeInstanceOf(SourceError);
    expect(err).toMatchObject({ code: 'POLLER_SFTP_AUTH_REJECTED' });
    expect(err.message).not.toContain(wrong);
  });

  it('verifies the host key: known_hosts passes, unconfigured and wrong keys are refused', async () => {
    expect(
      (await source({ hostKey: undefined, knownHosts: sshd.knownHostsFile }).list('2026/11', { signal: signal() }))
        .length,
    ).toBe(1);
    const unconfigured = await rejection(source({ hostKey: undefined }).list('', { signal: signal() }));
    expect(unconfigured).toMatchObject({ code: 'POLLER_SFTP_HOSTKEY_NOT_CONFIGURED' });
    const wrongKey = `SHA256:${Buffer.alloc(32, 1).toString('base64').replace(/=+$/, '')}`;
    const mismatch = await rejection(source({ hostKey: wrongKey }).list('', { signal: signal() }));
    expect(mismatch).toBeInstanceOf(SourceError);
    expect(mismatch).toMatchObject({ code: 'POLLER_SFTP_HOSTKEY_MISMATCH' });
  });
});
