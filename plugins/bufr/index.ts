/**
 * The `bufr` plugin: decodes each landed BUFR file and writes, under `out/<source>/<remotePath>`,
 * a JSON document (`.json`) and, for radar volumes, every sweep as a float64 NumPy array
 * (`.sweep<N>.npy`, shape rays x bins), plus an optional PPI quicklook (`.sweep<N>.png`).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { definePlugin, PermanentError } from '../../src/plugins/api.js';
import { decodeBufr } from './decoder/index.js';
import { type LocalTable, loadLocalTables } from './decoder/tables.js';
import { batched, jsonChunks, toJsonDocument } from './output/document.js';
import { toNpy } from './output/npy.js';
import { renderPpi } from './render/ppi.js';

const options = z.object({
  /** Root of the output tree. */
  out: z.string().min(1).describe('directory the decoded outputs are written under'),
  /** Local tables (ecCodes or OPERA CSV format), added to (and overriding) the shipped ones. */
  tables: z.string().optional().describe('directory of local BUFR tables, added to the shipped ones'),
  /** Also write the nested (tree) form of every subset into the JSON document. */
  nested: z.boolean().default(false).describe('add the nested form of each subset to the JSON'),
  /** Also write a PNG quicklook per radar sweep. */
  quicklook: z.boolean().default(false).describe('write a PPI quicklook PNG per radar sweep'),
});

// Parsed local tables are immutable; parse them once per process, not once per file.
let tableCache: { dir: string; tables: LocalTable[] } | undefined;

async function writeAtomic(file: string, data: string | Uint8Array | Iterable<string>): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  // Same-directory temp + rename: a crash never leaves a half-written output under the final name.
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

export default definePlugin({
  name: 'bufr',
  match: ['**/*.bufr', '**/*.BUFR'],
  options,
  timeoutMs: 120_000,
  // Decoding is CPU work that can need far more memory than the file's size (a 2.8 MB satellite
  // message has exhausted a 4 GB heap): in worker threads, so a decode never stalls transfers,
  // and bounded, so a bad file costs one worker, not the poller.
  isolate: 'worker',
  memoryLimitMb: 1024,
  setup(ctx) {
    const dir = ctx.options.tables;
    if (dir === undefined) return;
    try {
      tableCache = { dir, tables: loadLocalTables(dir) };
    } catch (err) {
      throw new PermanentError(
        'BUFR_TABLES_UNREADABLE',
        `bufr: options.tables: cannot read local tables from ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); fix the path`,
        { cause: err },
      );
    }
  },
  async process(file, ctx) {
    const root = path.resolve(ctx.options.out);
    const base = path.resolve(root, file.source, file.remotePath);
    if (!base.startsWith(root + path.sep))
      throw new PermanentError(
        'BUFR_BAD_PATH',
        `${file.remotePath}: resolves outside the output root ${root}; rename the file on the source`,
      );
    const bytes = await readFile(file.localPath);
    if (bytes.length === 0) throw new PermanentError('BUFR_EMPTY_FILE', `${file.remotePath}: empty file`);
    ctx.signal.throwIfAborted();
    const tables =
      ctx.options.tables === undefined
        ? undefined
        : tableCache?.dir === ctx.options.tables
          ? tableCache.tables
          : loadLocalTables(ctx.options.tables);
    const result = decodeBufr(bytes, tables ? { tables } : {});
    ctx.signal.throwIfAborted();
    const failed = result.messages.filter((m) => !m.ok);
    if (result.messages.length === 0)
      throw new PermanentError(
        'BUFR_NO_MESSAGE',
        `${file.remotePath}: no BUFR message found (no "BUFR" ... "7777" in ${bytes.length} bytes)`,
      );
    if (failed.length === result.messages.length) {
      const first = failed[0]!;
      const why = first.ok ? '' : `${first.error.code}: ${first.error.message}`;
      throw new PermanentError('BUFR_UNDECODABLE', `${file.remotePath}: no message could be decoded (${why})`);
    }
    if (failed.length > 0)
      ctx.log.warn(
        { event: 'bufr.partial', failed: failed.length, total: result.messages.length },
        'some messages failed',
      );

    const partial = result.messages.filter((m) => m.ok && m.partial);
    if (partial.length > 0) {
      const first = partial[0]!;
      ctx.log.warn(
        {
          event: 'bufr.partly_decoded',
          partial: partial.length,
          total: result.messages.length,
          reason: first.ok ? first.partial?.message : undefined,
        },
        'some messages decoded only up to a descriptor no table defines',
      );
    }
    for (const m of result.messages)
      if (m.ok && m.radarError)
        ctx.log.warn(
          { event: 'bufr.radar_failed', code: m.radarError.code, message: m.radarError.message },
          'radar volume not extracted',
        );
    const sweeps = result.messages.flatMap((m) => (m.ok && m.radar ? m.radar.sweeps : []));
    const sweepFile = (i: number, ext: string) => `${path.basename(base)}.sweep${i}.${ext}`;
    for (const [i, s] of sweeps.entries()) {
      ctx.signal.throwIfAborted();
      const npy = `${base}.sweep${i}.npy`;
      await writeAtomic(npy, toNpy(s.data, [s.rays, s.bins]));
      ctx.emit({ path: npy, kind: 'bufr.sweep' });
      if (ctx.options.quicklook) {
        const png = `${base}.sweep${i}.png`;
        await writeAtomic(png, renderPpi(s));
        ctx.emit({ path: png, kind: 'bufr.quicklook' });
      }
    }
    const doc = toJsonDocument(result, file.remotePath, {
      nested: ctx.options.nested,
      sweepFile: (i) => sweepFile(i, 'npy'),
    });
    const json = `${base}.json`;
    // Streamed: a file of thousands of messages never becomes one (too long) string.
    await writeAtomic(json, batched(jsonChunks(doc)));
    ctx.emit({ path: json, kind: 'bufr.json' });
    ctx.log.info(
      { event: 'bufr.decoded', messages: result.messages.length, failed: failed.length, sweeps: sweeps.length },
      'decoded',
    );
  },
});
