import { describe, expect, it } from 'vitest';
import { parseListObjects, xmlErrorCode } from '../../src/sources/s3/list-xml.js';
import { awsEncodePath, signRequest } from '../../src/sources/s3/sigv4.js';

describe('SigV4', () => {
  it("matches AWS's published GET Bucket (List Objects) example", () => {
    // docs.aws.amazon.com AmazonS3 API sig-v4-header-based-auth, "Example: GET Bucket (List Objects)".
    const headers = signRequest({
      method: 'GET',
      host: 'examplebucket.s3.amazonaws.com',
      encodedPath: '/',
      query: { 'max-keys': '2', prefix: 'J' },
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      nowMs: Date.UTC(2013, 4, 24),
    });
    expect(headers['authorization']).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
    );
    expect(headers['x-amz-date']).toBe('20130524T000000Z');
  });

  it('signs a session token and encodes keys once per segment', () => {
    const headers = signRequest({
      method: 'GET',
      host: 'h',
      encodedPath: awsEncodePath('/b/a b/ü(1)!.bufr'),
      query: {},
      region: 'eu-west-1',
      credentials: { accessKeyId: 'A', secretAccessKey: 'S', sessionToken: 'T' },
      nowMs: 0,
    });
    expect(headers['authorization']).toContain(
      'SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token',
    );
    expect(headers['x-amz-security-token']).toBe('T');
    expect(awsEncodePath('/b/a b/ü(1)!.bufr')).toBe('/b/a%20b/%C3%BC%281%29%21.bufr');
  });
});

describe('ListObjectsV2 XML', () => {
  it('reads objects, prefixes, multipart ETags, escaped keys and the continuation token', () => {
    const page = parseListObjects(`<?xml version="1.0"?><ListBucketResult><IsTruncated>true</IsTruncated>
      <Contents><Key>feed/a&amp;b.bufr</Key><LastModified>2026-11-23T10:05:01.000Z</LastModified><ETag>&quot;9b2c-12&quot;</ETag><Size>42</Size></Contents>
      <CommonPrefixes><Prefix>feed/2026/</Prefix></CommonPrefixes>
      <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>`);
    expect(page.objects).toEqual([
      { key: 'feed/a&b.bufr', sizeBytes: 42, mtimeMs: Date.UTC(2026, 10, 23, 10, 5, 1), etag: '"9b2c-12"' },
    ]);
    expect(page.prefixes).toEqual(['feed/2026/']);
    expect(page.truncated).toBe(true);
    expect(page.nextToken).toBe('1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=');
    expect(xmlErrorCode('<Error><Code>NoSuchBucket</Code><Message>x</Message></Error>')).toBe('NoSuchBucket');
    expect(xmlErrorCode('<html>')).toBeUndefined();
  });
});
