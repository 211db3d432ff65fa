/**
 * The S3 source under the engine (s3rver): date templates narrow the listing to the window's
 * prefixes, signed requests, `after: delete` removes each object only once it is processed, and
 * a no-change re-poll fetches nothing; an object overwritten with the same size is a new version.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { S3RVER_KEYS, startS3Server, type TestS3Server } from '../helpers/s3-server.js';
import { makeTmpDir, type TmpDir } from '../helpers/tmp-dir.js';
import { webCycle, writeWebConfig } from '../helpers/web-engine.js';

let s3: TestS3Server;
let tmp: TmpDir;
const day = (offsetDays: number): string => {
  const d = new Date(Date.now() + offsetDays * 86_400_000);
  return `${d.getUTCFullYear()}/${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}`;
};

beforeAll(async () => {
  s3 = await startS3Server();
  tmp = await makeTmpDir('poller-s3-engine-');
  for (let i = 0; i < 5; i++) await s3.put(`feed/${day(0)}/vol-${i}.bufr`, `today ${i}`);
  await s3.put(`feed/${day(-30)}/old.bufr`, 'a month ago');
  await s3.put('other/elsewhere.bufr', 'not under the prefix');
});
afterAll(async () => {
  await s3?.close();
  await tmp?.remove();
});

it('lists only the prefixes of the window, fetches each object once and deletes it after processing', async () => {
  const config = await writeWebConfig(tmp.path, {
    url: `s3://${s3.bucket}/feed/{YYYY}/{MM}/{DD}/`,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    accessKeyId: S3RVER_KEYS.accessKeyId,
    secretAccessKey: S3RVER_KEYS.secretAccessKey,
    maxAge: '2d',
    after: 'delete',
    stableListings: 1,
  });
  const first = await webCycle(config);
  expect(first).toMatchObject({ fetched: 5, processed: 5, failed: 0 });
  const lists = s3.requests.filter((r) => r.includes('list-type=2'));
  expect(lists.some((r) => r.includes(encodeURIComponent(`feed/${day(0)}/`)))).toBe(true);
  // Nothing outside the window's day prefixes was listed: not the month-old day, not the bucket root.
  expect(lists.some((r) => r.includes(encodeURIComponent(`feed/${day(-30)}/`)))).toBe(false);
  expect(lists.every((r) => r.includes('prefix=feed'))).toBe(true);
  const keys = await s3.keys();
  expect(keys.filter((k) => k.startsWith(`feed/${day(0)}/`))).toEqual([]);
  expect(keys).toEqual(expect.arrayContaining([`feed/${day(-30)}/old.bufr`, 'other/elsewhere.bufr']));
  expect(s3.requests.filter((r) => r.startsWith('DELETE '))).toHaveLength(5);
  const second = await webCycle(config);
  expect(second).toMatchObject({ fetched: 0, failed: 0 });
});

// s3rver checks the access key id but not the v4 signature itself; the signer is checked against
// AWS's published example in test/unit/s3.sigv4.test.ts.
it('pauses the source on an unknown access key (SourceError), without failing files', async () => {
  const config = await writeWebConfig(tmp.path, {
    url: `s3://${s3.bucket}/feed/`,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    accessKeyId: 'AKIDUNKNOWN',
    secretAccessKey: 'wrong-secret',
  });
  const summary = await webCycle(config);
  expect(summary.error).toMatchObject({ code: 'POLLER_S3_AUTH_REJECTED', paused: true });
  expect(summary.error?.message).not.toContain('wrong-secret');
});

it('an object overwritten with the same size is a new version (its ETag): fetched again, new bytes landed', async () => {
  const { mkdir, readFile } = await import('node:fs/promises');
  const path = await import('node:path');
  const dir = path.join(tmp.path, 'overwrite');
  await mkdir(dir, { recursive: true });
  await s3.put('same/x.bufr', 'version one');
  const config = await writeWebConfig(dir, {
    url: `s3://${s3.bucket}/same/`,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    accessKeyId: S3RVER_KEYS.accessKeyId,
    secretAccessKey: S3RVER_KEYS.secretAccessKey,
    stableListings: 1,
  });
  expect(await webCycle(config)).toMatchObject({ fetched: 1, failed: 0 });
  await s3.put('same/x.bufr', 'version two');
  expect(await webCycle(config)).toMatchObject({ fetched: 1, failed: 0 });
  expect(await readFile(path.join(dir, 'landing', 'web', 'x.bufr'), 'utf8')).toBe('version two');
  const { SqliteLedger } = await import('../../src/ledger/sqlite/sqlite-ledger.js');
  const ledger = new SqliteLedger(path.join(dir, 'ledger.db'));
  try {
    const versions = await ledger.history('web', 'x.bufr');
    expect(versions).toHaveLength(2);
    // Both versions carry the object's ETag, and they differ.
    expect(versions.every((v) => /^"[0-9a-f]{32}"$/.test(v.etag ?? ''))).toBe(true);
    expect(versions[0]?.etag).not.toBe(versions[1]?.etag);
  } finally {
    await ledger.close();
  }
  expect(await webCycle(config)).toMatchObject({ fetched: 0, failed: 0 });
});
