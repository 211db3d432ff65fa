import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { createFtpSource } from '../../src/sources/ftp/ftp-source.js';
import type { Source } from '../../src/sources/source.js';
import { ftpSourceOptions, startFtpServer, type TestFtpServer } from '../helpers/ftp-server.js';
import { createLogSink } from '../helpers/log-sink.js';

let server: TestFtpServer | undefined;
let source: Source | undefined;
afterEach(async () => {
  await source?.close();
  await server?.close();
});

/** Downloads into memory; on failure returns what arrived and the error. */
async function fetchInto(src: Source, remotePath: string, offsetBytes: number, chunks: Buffer[]): Promise<unknown> {
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => chunks.push(c));
  try {
    await src.download(remotePath, sink, { offsetBytes, signal: AbortSignal.timeout(20_000) });
    return undefined;
  } catch (err) {
    return err;
  }
}

it('resumes with REST after the server resets the data connection half way, giving the exact bytes', async () => {
  server = await startFtpServer({ faults: { dropDataAfterBytes: 400_000, dropTimes: 1 } });
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  const data = randomBytes(1_000_000);
  await writeFile(path.join(server.root, 'vol.bufr'), data);

  const chunks: Buffer[] = [];
  const first = await fetchInto(source, 'vol.bufr', 0, chunks);
  expect(first).toBeInstanceOf(TransientError);
  expect(server.droppedTransfers()).toBe(1);
  const received = Buffer.concat(chunks).length;
  expect(received).toBeLessThan(data.length);

  const second = await fetchInto(source, 'vol.bufr', received, chunks);
  expect(second).toBeUndefined();
  expect(Buffer.concat(chunks).equals(data)).toBe(true);
});

it('resumes again after a second break', async () => {
  server = await startFtpServer({ faults: { dropDataAfterBytes: 200_000, dropTimes: 2 } });
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  const data = randomBytes(700_000);
  await writeFile(path.join(server.root, 'two.bin'), data);
  const chunks: Buffer[] = [];
  let outcome: unknown = new Error('not run');
  // Bounded: two breaks are scripted, the third attempt must finish.
  for (let attempt = 0; attempt < 3 && outcome !== undefined; attempt++) {
    outcome = await fetchInto(source, 'two.bin', Buffer.concat(chunks).length, chunks);
    if (outcome !== undefined) expect(outcome).toBeInstanceOf(TransientError);
  }
  expect(outcome).toBeUndefined();
  expect(server.droppedTransfers()).toBe(2);
  expect(Buffer.concat(chunks).equals(data)).toBe(true);
});
