/**
 * S3 keys from the instance profile: a small IMDSv2 server on 127.0.0.1 (token PUT, role name,
 * role keys) in front of s3rver, reached through AWS_EC2_METADATA_SERVICE_ENDPOINT as on an
 * instance; refresh before expiry; and one clear line when neither keys nor a profile exist.
 */
import http from 'node:http';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { ConfigError, SourceError } from '../../src/errors.js';
import { createInstanceProfileCredentials } from '../../src/sources/s3/instance-profile.js';
import { createS3Source } from '../../src/sources/s3/s3-source.js';
import { freePort } from '../helpers/free-port.js';
import { createLogSink } from '../helpers/log-sink.js';
import { S3RVER_KEYS, s3SourceOptions, startS3Server, type TestS3Server } from '../helpers/s3-server.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';
import { webCycle, writeWebConfig } from '../helpers/web-engine.js';

const log = createLogSink().log;
const TOKEN = 'imds-session-token';

interface FakeImds {
  endpoint: string;
  /** Method, path and whether the session token came with it. */
  requests: string[];
  /** What the role document holds next; `role: undefined` answers 404 for the role name. */
  state: { role: string | undefined; keyId: string; expiration: string };
  close(): Promise<void>;
}

async function startImds(): Promise<FakeImds> {
  const port = await freePort();
  const requests: string[] = [];
  const state: FakeImds['state'] = {
    role: 'poller-role',
    keyId: S3RVER_KEYS.accessKeyId,
    expiration: new Date(Date.now() + 6 * 3_600_000).toISOString(),
  };
  let issued = 0;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    const withToken = req.headers['x-aws-ec2-metadata-token'] === TOKEN;
    requests.push(`${req.method} ${url}${withToken ? ' +token' : ''}`);
    if (req.method === 'PUT' && url === '/latest/api/token') {
      if (req.headers['x-aws-ec2-metadata-token-ttl-seconds'] === undefined) res.writeHead(400).end();
      else res.writeHead(200, { 'content-type': 'text/plain' }).end(TOKEN);
      return;
    }
    // IMDSv2 only: without the session token every metadata read is refused.
    if (!withToken) return void res.writeHead(401).end();
    if (url === '/latest/meta-data/iam/security-credentials/') {
      if (state.role === undefined) res.writeHead(404).end();
      else res.writeHead(200).end(state.role);
      return;
    }
    if (state.role !== undefined && url === `/latest/meta-data/iam/security-credentials/${state.role}`) {
      issued++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          Code: 'Success',
          LastUpdated: new Date().toISOString(),
          Type: 'AWS-HMAC',
          AccessKeyId: state.keyId,
          SecretAccessKey: S3RVER_KEYS.secretAccessKey,
          Token: `session-${issued}`,
          Expiration: state.expiration,
        }),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    state,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

let s3: TestS3Server;
let imds: FakeImds;
let tmp: TmpDir;
beforeAll(async () => {
  [s3, imds, tmp] = await Promise.all([startS3Server(), startImds(), makeTmpDir('poller-s3-imds-')]);
  await s3.put('feed/a.bufr', 'from the bucket');
});
afterAll(async () => {
  await s3?.close();
  await imds?.close();
  await tmp?.remove();
});

describe('S3 credentials from the instance profile (IMDSv2)', () => {
  it('signs with the role keys: token PUT, role name, role keys, each read with the token', async () => {
    imds.requests.length = 0;
    const base = s3SourceOptions(s3, log, { prefix: 'feed/', anonymous: true });
    const source = createS3Source({ ...base, s3: { ...base.s3!, instanceProfile: { endpoint: imds.endpoint } } });
    const signal = AbortSignal.timeout(10_000);
    expect((await source.list('', { signal })).map((e) => e.name)).toEqual(['a.bufr']);
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await source.download('a.bufr', sink, { offsetBytes: 0, signal });
    expect(Buffer.concat(chunks).toString()).toBe('from the bucket');
    // One fetch of the keys serves every request while they are fresh.
    expect(imds.requests).toEqual([
      'PUT /latest/api/token',
      'GET /latest/meta-data/iam/security-credentials/ +token',
      'GET /latest/meta-data/iam/security-credentials/poller-role +token',
    ]);
    await source.close();
  });

  it('renews the keys shortly before they expire, and only then', async () => {
    imds.requests.length = 0;
    let now = Date.parse('2026-11-23T12:00:00Z');
    imds.state.expiration = '2026-11-23T13:00:00Z';
    const provider = createInstanceProfileCredentials({ source: 's3', endpoint: imds.endpoint, nowMs: () => now });
    const signal = AbortSignal.timeout(10_000);
    const first = await provider.get(signal);
    expect(first.sessionToken).toMatch(/^session-\d+$/);
    now += 50 * 60_000; // 10 minutes before expiry: still fresh
    expect(await provider.get(signal)).toBe(first);
    now += 6 * 60_000; // 4 minutes before expiry: renewed
    const second = await provider.get(signal);
    expect(second.sessionToken).not.toBe(first.sessionToken);
    expect(
      imds.requests.filter((r) => r.startsWith('GET /latest/meta-data/iam/security-credentials/poller-role')),
    ).toHaveLength(2);
  });

  it('keys the role gives that S3 refuses pause the source as refused keys', async () => {
    imds.state.keyId = 'AKIDNOTKNOWN';
    imds.state.expiration = new Date(Date.now() + 6 * 3_600_000).toISOString();
    try {
      const base = s3SourceOptions(s3, log, { prefix: 'feed/', anonymous: true });
      const source = createS3Source({ ...base, s3: { ...base.s3!, instanceProfile: { endpoint: imds.endpoint } } });
      await expect(source.list('', { signal: AbortSignal.timeout(10_000) })).rejects.toMatchObject({
        code: 'POLLER_S3_AUTH_REJECTED',
      });
      await source.close();
    } finally {
      imds.state.keyId = S3RVER_KEYS.accessKeyId;
    }
  });

  it('through the config: no keys and no anonymous means the instance profile at AWS_EC2_METADATA_SERVICE_ENDPOINT', async () => {
    const saved = process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'];
    process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] = imds.endpoint;
    try {
      const config = await writeWebConfig(tmp.path, {
        url: `s3://${s3.bucket}/feed/`,
        endpoint: s3.endpoint,
        forcePathStyle: true,
        stableListings: 1,
      });
      const asked = imds.requests.length;
      expect(await webCycle(config)).toMatchObject({ fetched: 1, failed: 0 });
      expect(imds.requests.slice(asked)).toContain('GET /latest/meta-data/iam/security-credentials/poller-role +token');
    } finally {
      if (saved === undefined) delete process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'];
      else process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] = saved;
    }
  });
});

describe('no keys and no profile: one clear line', () => {
  const configFor = (env: NodeJS.ProcessEnv) =>
    buildConfig(
      {
        landing: './landing',
        ledger: './ledger.db',
        sources: [{ name: 'bucket', url: 's3://radar/feed/', endpoint: s3.endpoint, forcePathStyle: true }],
      },
      tmp.path,
      env,
    );

  it('an instance without a role pauses the source with a line that names the fixes', async () => {
    imds.state.role = undefined;
    try {
      const base = s3SourceOptions(s3, log, { prefix: 'feed/', anonymous: true });
      const source = createS3Source({ ...base, s3: { ...base.s3!, instanceProfile: { endpoint: imds.endpoint } } });
      const err = await source.list('', { signal: AbortSignal.timeout(10_000) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SourceError);
      expect(err).toMatchObject({ code: 'POLLER_S3_NO_CREDENTIALS' });
      expect((err as Error).message).toMatch(/has no IAM role attached.*give keys.*anonymous: true/);
      expect((err as Error).message).not.toContain('\n');
      await source.close();
    } finally {
      imds.state.role = 'poller-role';
    }
  });

  it('off EC2 (nothing answers at the metadata endpoint) the same, and no request goes to S3 unsigned', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const s = configFor({ AWS_EC2_METADATA_SERVICE_ENDPOINT: closed }).sources[0]!;
    expect(s.s3?.instanceProfile).toEqual({ endpoint: closed });
    expect(s.s3?.credentials).toBeUndefined();
    const before = s3.requests.length;
    const base = s3SourceOptions(s3, log, { prefix: 'feed/', anonymous: true });
    const source = createS3Source({ ...base, s3: { ...base.s3!, instanceProfile: { endpoint: closed } } });
    await expect(source.list('', { signal: AbortSignal.timeout(10_000) })).rejects.toMatchObject({
      code: 'POLLER_S3_NO_CREDENTIALS',
      message: expect.stringMatching(/did not answer/),
    });
    expect(s3.requests.length).toBe(before);
    await source.close();
  });

  it('with the metadata service switched off, the config is refused at start', () => {
    expect(() => configFor({ AWS_EC2_METADATA_DISABLED: 'true' })).toThrow(ConfigError);
    expect(() => configFor({ AWS_EC2_METADATA_DISABLED: 'true' })).toThrow(
      /sources\[0\]: no S3 credentials: give accessKeyId/,
    );
    expect(
      configFor({ AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' }).sources[0]?.s3?.instanceProfile,
    ).toBeUndefined();
  });
});
