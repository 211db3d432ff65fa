/**
 * AWS Signature Version 4 for S3 requests without a body (GET, HEAD, DELETE): the whole of what
 * a poller needs from the SDK's signer, in one pure function (tested against AWS's published
 * example in test/unit/s3.sigv4.test.ts).
 */
import { createHash, createHmac } from 'node:crypto';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** SHA-256 of an empty payload. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ is escaped. */
export function awsEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `/bucket/a b/c` → `/bucket/a%20b/c` (S3 keys: each segment encoded once, slashes kept). */
export function awsEncodePath(p: string): string {
  return p.split('/').map(awsEncode).join('/');
}

export function canonicalQuery(query: Readonly<Record<string, string>>): string {
  return Object.keys(query)
    .sort()
    .map((k) => `${awsEncode(k)}=${awsEncode(query[k] as string)}`)
    .join('&');
}

export interface SignInput {
  method: string;
  host: string;
  /** Already encoded with awsEncodePath. */
  encodedPath: string;
  query: Readonly<Record<string, string>>;
  region: string;
  credentials: S3Credentials;
  nowMs: number;
  service?: string;
}

/** The headers to add to the request: x-amz-date, x-amz-content-sha256, authorization (+ token). */
export function signRequest(input: SignInput): Record<string, string> {
  const service = input.service ?? 's3';
  const amzDate = new Date(input.nowMs).toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    host: input.host,
    'x-amz-content-sha256': EMPTY_SHA256,
    'x-amz-date': amzDate,
    ...(input.credentials.sessionToken !== undefined && { 'x-amz-security-token': input.credentials.sessionToken }),
  };
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${(headers[n] as string).trim()}\n`).join('');
  const signedHeaders = names.join(';');
  const canonical = [
    input.method,
    input.encodedPath,
    canonicalQuery(input.query),
    canonicalHeaders,
    signedHeaders,
    EMPTY_SHA256,
  ].join('\n');
  const scope = `${day}/${input.region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  let key: Buffer = hmac(`AWS4${input.credentials.secretAccessKey}`, day);
  key = hmac(key, input.region);
  key = hmac(key, service);
  key = hmac(key, 'aws4_request');
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  const { host: _host, ...sent } = headers;
  return {
    ...sent,
    authorization: `AWS4-HMAC-SHA256 Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
