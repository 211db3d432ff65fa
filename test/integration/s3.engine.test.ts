/**
 * The S3 source under the engine (s3rver): date templates narrow the listing to the window's
 * prefixes, signed requests, `after: delete` removes each object only once it is processed, and
 * a no-change re-poll fetches nothing.
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
