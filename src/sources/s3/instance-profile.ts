/**
 * S3 credentials from the EC2 instance profile, through the instance metadata service (IMDSv2):
 * PUT a session token, GET the role name, GET that role's temporary keys. The keys are cached and
 * fetched again a few minutes before they expire (IMDS rotates them well before then). IMDSv1
 * (no token) is not used: a server that refuses the token PUT is reported, not worked around.
 * The endpoint is `AWS_EC2_METADATA_SERVICE_ENDPOINT` (as in the AWS SDKs), else 169.254.169.254.
 */
import { request } from 'undici';
import { SourceError } from '../../errors.js';
import type { S3Credentials } from './sigv4.js';

export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';

/** Keys are renewed this long before their Expiration (the AWS SDKs use 5 minutes too). */
const REFRESH_BEFORE_MS = 5 * 60_000;
/** Keys without a readable Expiration are asked for again after this long. */
const UNKNOWN_EXPIRY_MS = 10 * 60_000;
/** IMDS answers in milliseconds on an instance; off EC2 nothing answers at all. */
const IMDS_TIMEOUT_MS = 2_000;
/** The session token lives this long (the IMDS maximum is 6 hours). */
const TOKEN_TTL_S = 21_600;
/** A role document is a few hundred bytes. */
const MAX_BODY_BYTES = 64 * 1024;

export interface InstanceProfileOptions {
  /** Source name, for messages. */
  source: string;
  /** Base URL of the metadata service, e.g. `http://169.254.169.254`. */
  endpoint: string;
  /** Clock, for tests of the refresh. @default Date.now */
  nowMs?: () => number;
}

export interface CredentialProvider {
  /** Current keys: cached, or fetched when missing or about to expire. Concurrent callers share one fetch. */
  get(signal: AbortSignal): Promise<S3Credentials>;
}

interface RoleDocument {
  Code?: unknown;
  AccessKeyId?: unknown;
  SecretAccessKey?: unknown;
  Token?: unknown;
  Expiration?: unknown;
}

type Fail = (why: string, cause?: unknown) => SourceError;

/** One request to the metadata service, its body bounded; no answer is the `fail` of the caller. */
async function imdsCall(
  base: string,
  fail: Fail,
  method: 'PUT' | 'GET',
  path: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<{ status: number; text: string }> {
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(`${base}${path}`, {
      method,
      headers,
      signal: AbortSignal.any([signal, AbortSignal.timeout(IMDS_TIMEOUT_MS)]),
      headersTimeout: IMDS_TIMEOUT_MS,
      bodyTimeout: IMDS_TIMEOUT_MS,
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw fail('did not answer (not on EC2, or the metadata service is off)', err);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      res.body.destroy();
      throw fail(`sent more than ${MAX_BODY_BYTES} bytes for ${path}`);
    }
    chunks.push(chunk as Buffer);
  }
  return { status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') };
}

/** The keys in a role document, and when they expire (NaN: not said). */
function readRoleKeys(text: string, role: string, fail: Fail): { creds: S3Credentials; expiresMs: number } {
  let parsed: RoleDocument;
  try {
    parsed = JSON.parse(text) as RoleDocument;
  } catch (err) {
    throw fail(`sent keys for role ${JSON.stringify(role)} that are not JSON`, err);
  }
  const { AccessKeyId: id, SecretAccessKey: secret, Token: sessionToken, Code: code } = parsed;
  if (code !== undefined && code !== 'Success')
    throw fail(`reports ${JSON.stringify(code)} for role ${JSON.stringify(role)}`);
  if (typeof id !== 'string' || typeof secret !== 'string' || id === '' || secret === '') {
    throw fail(`sent no AccessKeyId/SecretAccessKey for role ${JSON.stringify(role)}`);
  }
  const creds: S3Credentials = {
    accessKeyId: id,
    secretAccessKey: secret,
    ...(typeof sessionToken === 'string' && sessionToken !== '' && { sessionToken }),
  };
  const expiresMs = typeof parsed.Expiration === 'string' ? Date.parse(parsed.Expiration) : Number.NaN;
  return { creds, expiresMs };
}

/** IMDSv2: a session token, the role name, that role's keys. */
async function fetchRoleKeys(base: string, fail: Fail, signal: AbortSignal) {
  const call = (method: 'PUT' | 'GET', path: string, headers: Record<string, string>) =>
    imdsCall(base, fail, method, path, headers, signal);
  const token = await call('PUT', '/latest/api/token', { 'x-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_S) });
  if (token.status !== 200 || token.text.trim() === '') {
    throw fail(`refused an IMDSv2 session token (HTTP ${token.status})`);
  }
  const auth = { 'x-aws-ec2-metadata-token': token.text.trim() };
  const roles = await call('GET', '/latest/meta-data/iam/security-credentials/', auth);
  const role = roles.text.split('\n')[0]?.trim() ?? '';
  if (roles.status === 404 || (roles.status === 200 && role === '')) {
    throw fail('has no IAM role attached to this instance');
  }
  if (roles.status !== 200) throw fail(`answered HTTP ${roles.status} for the role name`);
  const doc = await call('GET', `/latest/meta-data/iam/security-credentials/${encodeURIComponent(role)}`, auth);
  if (doc.status !== 200) throw fail(`answered HTTP ${doc.status} for the keys of role ${JSON.stringify(role)}`);
  return readRoleKeys(doc.text, role, fail);
}

export function createInstanceProfileCredentials(opts: InstanceProfileOptions): CredentialProvider {
  const now = opts.nowMs ?? Date.now;
  const base = opts.endpoint.replace(/\/+$/, '');
  let cached: { creds: S3Credentials; refreshAtMs: number } | undefined;
  let pending: Promise<S3Credentials> | undefined;

  const fail: Fail = (why, cause) =>
    new SourceError(
      'POLLER_S3_NO_CREDENTIALS',
      `source ${JSON.stringify(opts.source)}: no S3 credentials: no accessKeyId/secretAccessKey in the config or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment, and the instance profile at ${base} ${why}; give keys, attach an IAM role to the instance, or set anonymous: true for a public bucket`,
      cause === undefined ? undefined : { cause },
    );

  const fetchCredentials = async (signal: AbortSignal): Promise<S3Credentials> => {
    const { creds, expiresMs } = await fetchRoleKeys(base, fail, signal);
    const t = now();
    // Keys that expire sooner than the margin are still used once (better than none), then renewed.
    const refreshAtMs = Number.isFinite(expiresMs) ? Math.max(t, expiresMs - REFRESH_BEFORE_MS) : t + UNKNOWN_EXPIRY_MS;
    cached = { creds, refreshAtMs };
    return creds;
  };

  return {
    async get(signal: AbortSignal): Promise<S3Credentials> {
      if (cached && now() < cached.refreshAtMs) return cached.creds;
      pending ??= fetchCredentials(signal).finally(() => {
        pending = undefined;
      });
      return pending;
    },
  };
}
