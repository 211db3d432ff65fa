import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, expect, it } from 'vitest';
import { PollerError } from '../../src/errors.js';
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

it('a failing destination (disk full) rejects with its own error, unclassified, and the source keeps working', async () => {
  server = await startFtpServer();
  await writeFile(path.join(server.root, 'big.bin'), Buffer.alloc(500_000, 5));
  source = createFtpSource(ftpSourceOptions(server, createLogSink().log));
  let written = 0;
  const full = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      written += chunk.length;
      if (written > 100_000) {
        const err = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        callback(err);
        return;
      }
      callback();
    },
  });
  const err = await source
    .download('big.bin', full, { offsetBytes: 0, signal: AbortSignal.timeout(20_000) })
    .catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'ENOSPC' });
  expect(err).not.toBeInstanceOf(PollerError);

  const sink = new PassThrough();
  let n = 0;
  sink.on('data', (c: Buffer) => {
    n += c.length;
  });
  await source.download('big.bin', sink, { offsetBytes: 0, signal: AbortSignal.timeout(20_000) });
  expect(n).toBe(500_000);
});
