/**
 * s3rver (an S3 API on the file system) in process on 127.0.0.1, with one bucket. Objects are
 * put through its HTTP API (signed, as a client would), never written into its store directly.
 * s3rver checks SigV4 signatures against its fixed key pair S3RVER / S3RVER.
 */

import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { awsEncodePath, signRequest } from '../../src/sources/s3/sigv4.js';
import type { SourceConnectOptions } from '../../src/sources/source.js';
import { freePort } from './free-port.js';

export const S3RVER_KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface TestS3Server {
  port: number;
  bucket: string;
  endpoint: string;
  /** Requests seen by the server: method and URL path (with query). */
  requests: string[];
  put(key: string, body: Buffer | string): Promise<void>;
  /** Uploads a local tree: files as objects, empty directories as `dir/` marker objects. */
  putTree(dir: string, prefix?: string): Promise<void>;
  keys(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startS3Server(bucket = 'radar'): Promise<TestS3Server> {
  const dir = await mkdtemp(path.join(tmpdir(), 'poller-s3rver-'));
  const port = await freePort();
  const requests: string[] = [];
  const script = fileURLToPath(new URL('./s3rver-child.mjs', import.meta.url));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', script, String(port), dir, bucket], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buffered = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`s3rver exited (${code}) at start`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      buffered += text;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') resolve();
        else if (line.startsWith('REQ ')) requests.push(line.slice(4));
      }
    });
  });
  await ready;
  const endpoint = `http://127.0.0.1:${port}`;
  const put = async (key: string, body: Buffer | string): Promise<void> => {
    const encodedPath = awsEncodePath(`/${bucket}/${key}`);
    const headers = signRequest({
      method: 'PUT',
      host: `127.0.0.1:${port}`,
      encodedPath,
      query: {},
      region: 'us-east-1',
      credentials: S3RVER_KEYS,
      nowMs: Date.now(),
    });
    const res = await fetch(`${endpoint}${encodedPath}`, { method: 'PUT', headers, body });
    if (res.status !== 200) throw new Error(`PUT ${key}: ${res.status} ${await res.text()}`);
  };
  const putTree = async (local: string, prefix = ''): Promise<void> => {
    const entries = await readdir(local, { withFileTypes: true });
    if (entries.length === 0 && prefix !== '') await put(prefix, '');
    for (const e of entries) {
      const p = path.join(local, e.name);
      if (e.isDirectory()) await putTree(p, `${prefix}${e.name}/`);
      else if ((await stat(p)).isFile()) await put(`${prefix}${e.name}`, await readFile(p));
    }
  };
  return {
    port,
    bucket,
    endpoint,
    requests,
    put,
    putTree,
    async keys() {
      const res = await fetch(`${endpoint}/${bucket}?list-type=2`);
      return [...(await res.text()).matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1] as string);
    },
    async close() {
      if (child.exitCode === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await gone;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Connect options of an s3:// source on a TestS3Server. */
export function s3SourceOptions(
  server: TestS3Server,
  log: SourceConnectOptions['log'],
  over: { prefix?: string; anonymous?: boolean } = {},
): SourceConnectOptions {
  return {
    name: 's3',
    protocol: 's3',
    host: server.bucket,
    port: 443,
    user: '',
    rootPath: `/${over.prefix ?? ''}`,
    tls: { mode: 'none', insecure: false },
    timezone: 'UTC',
    maxConnections: 4,
    connectTimeoutMs: 5_000,
    dataTimeoutMs: 10_000,
    s3: {
      bucket: server.bucket,
      endpoint: server.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      ...(!over.anonymous && { credentials: S3RVER_KEYS }),
    },
    log,
  };
}
