/**
 * TLS and SSH identity checks through the engine: a certificate for another name, an expired
 * certificate and an unknown SSH host key are each rejected by default (`run-once` exits 1 with
 * one clear line, the source paused, the password never sent), and accepted only with the
 * explicit option (a fingerprint pin, `insecure: true`, the right known_hosts entry).
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type CliResult, type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { type SftpTestServer, startSftpServer } from '../helpers/sftp-server.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';

const run = promisify(execFile);

interface Issued {
  certPath: string;
  certPem: string;
  keyPem: string;
  fingerprint256: string;
}

let pki: TmpDir;
let caPath: string;
let wrongName: Issued;
let expired: Issued;
let env: EngineEnv | undefined;
let sftp: SftpTestServer | undefined;

/** A throwaway CA and `openssl ca`, which can set explicit validity dates (OpenSSL 3.0 `req` cannot). */
beforeAll(async () => {
  pki = await makeTmpDir('poller-pki-');
  const dir = pki.path;
  caPath = path.join(dir, 'ca.crt');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '30',
    '-subj',
    '/CN=poller test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    path.join(dir, 'ca.key'),
    '-out',
    caPath,
  ]);
  await writeFile(path.join(dir, 'index.txt'), '');
  await writeFile(path.join(dir, 'serial'), '1000\n');
  await writeFile(
    path.join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      `database = ${path.join(dir, 'index.txt')}`,
      `new_certs_dir = ${dir}`,
      `serial = ${path.join(dir, 'serial')}`,
      'default_md = sha256',
      'policy = any',
      'copy_extensions = copy',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  const issue = async (name: string, san: string, validity: string[]): Promise<Issued> => {
    const key = path.join(dir, `${name}.key`);
    const csr = path.join(dir, `${name}.csr`);
    const crt = path.join(dir, `${name}.crt`);
    await run(
      'openssl',
      ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`].concat([
        '-addext',
        `subjectAltName=${san}`,
        '-keyout',
        key,
        '-out',
        csr,
      ]),
    );
    const signed = ['-in', csr, '-out', crt];
    // `openssl ca` can set explicit dates; `x509 -req` is enough otherwise.
    await run(
      'openssl',
      validity[0] === '-startdate'
        ? ['ca', '-batch', '-notext', '-config', path.join(dir, 'ca.cnf'), '-cert', caPath].concat([
            '-keyfile',
            path.join(dir, 'ca.key'),
            ...validity,
            ...signed,
          ])
        : ['x509', '-req', '-CA', caPath, '-CAkey', path.join(dir, 'ca.key'), '-CAcreateserial'].concat([
            '-copy_extensions',
            'copy',
            ...validity,
            ...signed,
          ]),
    );
    const { X509Certificate } = await import('node:crypto');
    const certPem = await readFile(crt, 'utf8');
    return {
      certPath: crt,
      certPem,
      keyPem: await readFile(key, 'utf8'),
      fingerprint256: new X509Certificate(certPem).fingerprint256,
    };
  };
  // Signed by the trusted CA and valid, but for another host.
  wrongName = await issue('wrong.example', 'DNS:wrong.example', ['-days', '30']);
  // Signed by the trusted CA, for this host, expired in 2020.
  expired = await issue('127.0.0.1', 'IP:127.0.0.1,DNS:localhost', [
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
  ]);
});
afterAll(async () => {
  await pki?.remove();
});
afterEach(async () => {
  await env?.close();
  env = undefined;
  await sftp?.close();
  sftp = undefined;
});

interface Summary {
  sources: Array<{ fetched: number; error?: { code: string; message: string } }>;
}

async function setSource(e: EngineEnv, patch: Record<string, unknown>, replace = false): Promise<void> {
  const config = JSON.parse(await readFile(e.configPath, 'utf8')) as { sources: Array<Record<string, unknown>> };
  const current = config.sources[0] ?? {};
  config.sources[0] = replace ? { name: 'radar', ...patch } : { ...current, ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete config.sources[0][k];
  await writeFile(e.configPath, JSON.stringify(config));
}

/** `run-once` refused the source: exit 1, one error line naming the problem, nothing fetched. */
/**
 * `run-once --json`. ftp-srv answers AUTH TLS with 234 and wraps its socket a tick later: on a
 * loaded machine the client's ClientHello can be read as a plain command (the client then sees
 * ERR_SSL_WRONG_VERSION_NUMBER, a refusal for the wrong reason). Run again in that case.
 */
async function runOnce(e: EngineEnv, extra: string[] = []): Promise<CliResult> {
  let r = await e.cli(['run-once', '--json', ...extra]);
  for (let again = 0; again < 3 && r.stdout.includes('ERR_SSL_WRONG_VERSION_NUMBER'); again++) {
    r = await e.cli(['run-once', '--json', ...extra]);
  }
  return r;
}

async function expectRejected(e: EngineEnv, code: string, pattern: RegExp): Promise<string> {
  const r = await runOnce(e);
  expect(r.code, r.stderr).toBe(1);
  const summary = JSON.parse(r.stdout) as Summary;
  expect(summary.sources[0]?.error?.code, r.stderr).toBe(code);
  expect(summary.sources[0]?.error?.message).toMatch(pattern);
  expect(summary.sources[0]?.fetched).toBe(0);
  const errorLines = r.stderr.split('\n').filter((l) => l.includes('"level":50'));
  expect(errorLines, r.stderr).toHaveLength(1);
  expect(errorLines[0]).toContain('"event":"source.paused"');
  const status = await e.cli(['status', '--json']);
  expect(status.stdout).toContain(JSON.stringify(summary.sources[0]?.error?.message ?? 'missing').slice(1, 60));
  return summary.sources[0]?.error?.message ?? '';
}

async function expectAccepted(e: EngineEnv): Promise<void> {
  const r = await runOnce(e);
  expect(r.code, r.stderr).toBe(0);
  expect((JSON.parse(r.stdout) as Summary).sources[0]?.fetched).toBe(1);
}

it('FTPS: a certificate for another name is rejected by default, accepted with its fingerprint pinned', async () => {
  env = await startEngineEnv({ ftp: { tls: true, tlsCertificate: wrongName } });
  await env.put('x.bufr', 'radar');
  await setSource(env, { tls: 'explicit', ca: caPath });
  const message = await expectRejected(env, 'POLLER_FTP_TLS_REJECTED', /certificate|altnames|wrong\.example/i);
  expect(env.ftp.logins()).toEqual({ tls: 0, plain: 0 });
  await setSource(env, { ca: undefined, fingerprint: wrongName.fingerprint256 });
  await expectAccepted(env);
  console.log(`tls-ssh wrong name: rejected by default (0 logins): "${message}"; accepted with fingerprint pin`);
});

it('FTPS: an expired certificate from a trusted CA is rejected by default, accepted with insecure: true', async () => {
  env = await startEngineEnv({ ftp: { tls: true, tlsCertificate: expired } });
  await env.put('x.bufr', 'radar');
  await setSource(env, { tls: 'explicit', ca: caPath });
  const message = await expectRejected(env, 'POLLER_FTP_TLS_REJECTED', /expired/i);
  expect(env.ftp.logins()).toEqual({ tls: 0, plain: 0 });
  await setSource(env, { insecure: true });
  const r = await runOnce(env, ['--log-level', 'warn']);
  expect(r.code, r.stderr).toBe(0);
  expect((JSON.parse(r.stdout) as Summary).sources[0]?.fetched).toBe(1);
  expect(r.stderr).toMatch(/insecure/);
  console.log(`tls-ssh expired: rejected by default (0 logins): "${message}"; accepted with insecure: true (logged)`);
});

it('SFTP: an unknown host key is rejected by default, accepted with the right known_hosts entry', async () => {
  sftp = await startSftpServer();
  await writeFile(path.join(sftp.root, 'x.bufr'), 'radar');
  env = await startEngineEnv();
  const knownHosts = path.join(env.dir, 'known_hosts');
  // known_hosts knows other hosts only: this server's key is unknown.
  await writeFile(knownHosts, `${sftp.knownHostsLine.replace(/^\S+/, '[192.0.2.1]:22')}\n`);
  await setSource(
    env,
    {
      url: `sftp://${sftp.user}@127.0.0.1:${sftp.port}/`,
      password: '${TEST_FTP_PASSWORD}',
      knownHosts,
      include: ['**/*.bufr'],
      settleDelay: '100ms',
    },
    true,
  );
  const e = env;
  const cli = e.cli.bind(e);
  // The env passes its FTP password as TEST_FTP_PASSWORD; the SFTP server wants its own.
  e.cli = (args, o = {}) => cli(args, { env: { ...o.env, TEST_FTP_PASSWORD: sftp?.password ?? '' } });
  const unknown = await expectRejected(e, 'POLLER_SFTP_HOSTKEY_UNKNOWN', /not in knownHosts/);
  expect(unknown).toContain(sftp.hostKeyFingerprint);
  // No known_hosts and no pin: refused too, before connecting blind.
  await setSource(e, { knownHosts: undefined });
  const unset = await expectRejected(e, 'POLLER_SFTP_HOSTKEY_NOT_CONFIGURED', /hostKey|knownHosts/);
  // A pin of another key: a mismatch.
  await setSource(e, { hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
  const mismatch = await expectRejected(e, 'POLLER_SFTP_HOSTKEY_MISMATCH', /host key/i);
  await setSource(e, { hostKey: undefined, knownHosts });
  await writeFile(knownHosts, `${sftp.knownHostsLine}\n`);
  await expectAccepted(e);
  console.log(
    `tls-ssh host key: unknown -> "${unknown}"; not configured -> "${unset}"; mismatch -> "${mismatch}"; ` +
      'accepted with the right known_hosts line',
  );
});
