/**
 * The behaviour every `Source` (ftp, ftps, sftp, local) must show, as one reusable vitest suite:
 *
 * ```ts
 * defineSourceContract('ftp (ftp-srv)', async () => {
 *   const server = await startFtpServer();
 *   const source = createFtpSource({ ...options for server });
 *   return { source, root: server.root, close: () => server.close() };
 * });
 * ```
 *
 * `root` is the local directory the source serves; the suite creates its files there. Pinned
 * behaviour, beyond the interface's types:
 * - `download` leaves the destination stream open; `onBytes` adds up to the bytes delivered.
 * - a missing file rejects with PermanentError; listing a missing directory rejects with
 *   PermanentError too (or resolves empty when `missingDir: 'empty'` is declared).
 * - `close()` may be called twice.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError } from '../../src/errors.js';
import type { MtimePrecision, RemoteEntry, Source } from '../../src/sources/source.js';

export interface ContractTarget {
  source: Source;
  /** Local directory served as the source root. */
  root: string;
  /** Stops the server (not the source: the suite closes the source itself). */
  close(): Promise<void>;
}

export interface ContractOptions {
  /** What listing a missing directory does. @default 'error' */
  missingDir?: 'error' | 'empty';
  /** Run after the files are written, e.g. to chown them to a server's system user. */
  afterFilesCreated?: (root: string) => Promise<void>;
  /** The server sets mtimes itself (S3: the upload time): the mtime check is skipped. */
  serverMtimes?: boolean;
}

/** Bytes written into the test tree; big enough for several data chunks. */
const BIG_SIZE = 300_000;
const HOUR_MS = 3_600_000;

const SLACK_MS: Record<MtimePrecision, number> = {
  ms: 1000,
  s: 2000,
  minute: 61_000,
  day: 36 * HOUR_MS,
};

/** Collects what a download writes; the suite checks it was not ended by the source. */
async function download(
  source: Source,
  remotePath: string,
  offsetBytes = 0,
): Promise<{ data: Buffer; reported: number; endedBySource: boolean }> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  let reported = 0;
  await source.download(remotePath, sink, {
    offsetBytes,
    signal: AbortSignal.timeout(20_000),
    onBytes: (n) => {
      reported += n;
    },
  });
  const endedBySource = sink.writableEnded;
  sink.end();
  return { data: Buffer.concat(chunks), reported, endedBySource };
}

function byName(entries: RemoteEntry[], name: string): RemoteEntry | undefined {
  return entries.find((e) => e.name === name);
}

/** Registers the contract suite for one kind of source. */
export function defineSourceContract(
  name: string,
  setup: () => Promise<ContractTarget>,
  opts: ContractOptions = {},
): void {
  describe(`Source contract: ${name}`, () => {
    let target: ContractTarget;
    const big = randomBytes(BIG_SIZE);
    const recentMs = Math.floor((Date.now() - 3 * HOUR_MS) / 60_000) * 60_000;
    const oldMs = Math.floor((Date.now() - 400 * 24 * HOUR_MS) / 1000) * 1000;
    const signal = (): AbortSignal => AbortSignal.timeout(20_000);

    beforeAll(async () => {
      target = await setup();
      const root = target.root;
      await mkdir(path.join(root, 'sub', 'deeper'), { recursive: true });
      await mkdir(path.join(root, 'dir with space'), { recursive: true });
      await writeFile(path.join(root, 'big.bin'), big);
      await writeFile(path.join(root, 'old.txt'), 'old file\n');
      await writeFile(path.join(root, 'name with spaces.txt'), 'spaces\n');
      await writeFile(path.join(root, 'ünïcödé-ß-雨.txt'), 'non-ascii\n');
      await writeFile(path.join(root, 'sub', 'nested.txt'), 'nested\n');
      await writeFile(path.join(root, 'dir with space', 'inner file.txt'), 'inner\n');
      await writeFile(path.join(root, 'empty.dat'), '');
      await utimes(path.join(root, 'big.bin'), recentMs / 1000, recentMs / 1000);
      await utimes(path.join(root, 'old.txt'), oldMs / 1000, oldMs / 1000);
      await opts.afterFilesCreated?.(root);
    });

    afterAll(async () => {
      await target?.source.close();
      await target?.close();
    });

    it('lists the root with files and directories, paths relative to the root', async () => {
      const entries = await target.source.list('', { signal: signal() });
      const names = entries.map((e) => e.name).sort();
      expect(names).toEqual(
        expect.arrayContaining(['big.bin', 'old.txt', 'sub', 'dir with space', 'empty.dat', 'name with spaces.txt']),
      );
      expect(names).not.toContain('.');
      expect(names).not.toContain('..');
      expect(byName(entries, 'big.bin')).toMatchObject({ path: 'big.bin', type: 'file', sizeBytes: BIG_SIZE });
      expect(byName(entries, 'sub')).toMatchObject({ path: 'sub', type: 'dir' });
      expect(byName(entries, 'empty.dat')).toMatchObject({ type: 'file', sizeBytes: 0 });
    });

    it('lists a subdirectory (one level only) with paths relative to the root', async () => {
      const entries = await target.source.list('sub', { signal: signal() });
      expect(entries.map((e) => e.path).sort()).toEqual(['sub/deeper', 'sub/nested.txt']);
      expect(byName(entries, 'nested.txt')).toMatchObject({ type: 'file', sizeBytes: 7 });
      const spaced = await target.source.list('dir with space', { signal: signal() });
      expect(spaced.map((e) => e.path)).toEqual(['dir with space/inner file.txt']);
    });

    it('reports plausible mtimes within the stated precision', async () => {
      if (opts.serverMtimes) return;
      const entries = await target.source.list('', { signal: signal() });
      const recent = byName(entries, 'big.bin');
      const old = byName(entries, 'old.txt');
      expect(recent).toBeDefined();
      expect(old).toBeDefined();
      if (!recent || !old) return;
      expect(Math.abs(recent.mtimeMs - recentMs)).toBeLessThanOrEqual(SLACK_MS[recent.mtimePrecision]);
      expect(Math.abs(old.mtimeMs - oldMs)).toBeLessThanOrEqual(SLACK_MS[old.mtimePrecision]);
    });

    it('keeps names with spaces and non-ASCII characters, and downloads them', async () => {
      const entries = await target.source.list('', { signal: signal() });
      expect(byName(entries, 'ünïcödé-ß-雨.txt')).toMatchObject({ type: 'file', sizeBytes: 10 });
      expect((await download(target.source, 'ünïcödé-ß-雨.txt')).data.toString()).toBe('non-ascii\n');
      expect((await download(target.source, 'name with spaces.txt')).data.toString()).toBe('spaces\n');
      expect((await download(target.source, 'dir with space/inner file.txt')).data.toString()).toBe('inner\n');
    });

    it('downloads a whole file, reports every byte and leaves the stream open', async () => {
      const result = await download(target.source, 'big.bin');
      expect(result.data.equals(big)).toBe(true);
      expect(result.reported).toBe(BIG_SIZE);
      expect(result.endedBySource).toBe(false);
      expect((await download(target.source, 'empty.dat')).data.length).toBe(0);
    });

    it('downloads from an offset (resume) with the right bytes', async () => {
      const offset = 123_457;
      const result = await download(target.source, 'big.bin', offset);
      expect(result.data.equals(big.subarray(offset))).toBe(true);
      expect(result.reported).toBe(BIG_SIZE - offset);
    });

    it('serves several downloads at once', async () => {
      const results = await Promise.all([0, 1, 2, 3].map((i) => download(target.source, 'big.bin', i * 1000)));
      results.forEach((r, i) => {
        expect(r.data.equals(big.subarray(i * 1000))).toBe(true);
      });
    });

    it('rejects a missing file with PermanentError and stays usable', async () => {
      await expect(download(target.source, 'no-such-file.bin')).rejects.toBeInstanceOf(PermanentError);
      const entries = await target.source.list('', { signal: signal() });
      expect(byName(entries, 'big.bin')).toBeDefined();
    });

    it(`lists a missing directory as ${opts.missingDir === 'empty' ? 'empty' : 'PermanentError'}`, async () => {
      const listing = target.source.list('no-such-dir', { signal: signal() });
      if (opts.missingDir === 'empty') await expect(listing).resolves.toEqual([]);
      else await expect(listing).rejects.toBeInstanceOf(PermanentError);
    });

    it('stats a file, and a missing one as undefined (when stat is offered)', async () => {
      if (!target.source.stat) return;
      const entry = await target.source.stat('sub/nested.txt', { signal: signal() });
      expect(entry).toMatchObject({ path: 'sub/nested.txt', name: 'nested.txt', sizeBytes: 7 });
      expect(await target.source.stat('sub/missing.txt', { signal: signal() })).toBeUndefined();
    });

    it('rejects with the abort reason when the signal is already aborted', async () => {
      const controller = new AbortController();
      controller.abort(new Error('stop'));
      await expect(target.source.list('', { signal: controller.signal })).rejects.toThrow('stop');
    });

    it('gives a credential-free display URL', () => {
      expect(target.source.displayUrl).not.toMatch(/@/);
    });

    it('closes idempotently', async () => {
      const second = await setup();
      try {
        await second.source.list('', { signal: signal() });
        await second.source.close();
        await second.source.close();
      } finally {
        await second.close();
      }
    });
  });
}
