/**
 * count-volumes: a small custom plugin to copy. It counts the files and bytes each source
 * delivers per UTC day (by the file's remote modification time) and keeps the totals in
 * `<stateDir>/counts.json`, written to a temporary name and renamed so it is never half written.
 *
 * Build it to JavaScript (Node 20 does not run TypeScript) and point the config at the output:
 *
 *   npx tsc --module nodenext --target es2022 --strict --skipLibCheck \
 *     --rootDir examples/plugins --outDir examples/plugins/dist examples/plugins/count-volumes.ts
 *
 *   plugins:
 *     - use: ./plugins/dist/count-volumes.js
 *       match: "**\/*.bufr"
 *       options: { flushEvery: 20 }
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { definePlugin, PermanentError } from 'poller/plugin';
import { z } from 'zod';

/** source → UTC day (YYYY-MM-DD) → totals. */
type Counts = Record<string, Record<string, { files: number; bytes: number }>>;

let counts: Counts = {};
let loaded = false;
let unsaved = 0;

async function save(stateDir: string): Promise<void> {
  const file = path.join(stateDir, 'counts.json');
  await writeFile(`${file}.tmp`, `${JSON.stringify(counts, null, 2)}\n`);
  await rename(`${file}.tmp`, file);
  unsaved = 0;
}

export default definePlugin({
  name: 'count-volumes',
  match: ['**/*.bufr', '**/*.BUFR', '**/*.h5'],
  options: z.strictObject({
    /** Write counts.json after this many files (and at shutdown). */
    flushEvery: z.number().int().min(1).default(50),
  }),
  timeoutMs: 10_000,
  async setup(ctx) {
    // A config reload sets the new plugins up before the old ones are torn down, in the same
    // process: totals already in memory are newer than the file.
    if (loaded) return;
    loaded = true;
    // Carry on from the totals of the previous run.
    try {
      counts = JSON.parse(await readFile(path.join(ctx.stateDir, 'counts.json'), 'utf8')) as Counts;
    } catch {
      counts = {};
    }
  },
  async process(file, ctx) {
    // A zero-byte volume is a broken upload; retrying will not make it whole.
    if (file.sizeBytes === 0) throw new PermanentError('COUNT_VOLUMES_EMPTY', `${file.remotePath}: empty file`);
    const day = new Date(file.mtimeMs).toISOString().slice(0, 10);
    const perSource = counts[file.source] ?? {};
    counts[file.source] = perSource;
    const total = perSource[day] ?? { files: 0, bytes: 0 };
    perSource[day] = total;
    // Plugins run at least once per file version: a retry after a crash may count a file twice.
    // That is fine for a dashboard figure; a plugin that must be exact keys its state by path.
    total.files++;
    total.bytes += file.sizeBytes;
    ctx.log.debug({ day, files: total.files }, 'counted');
    if (++unsaved >= ctx.options.flushEvery) await save(ctx.stateDir);
  },
  async teardown(ctx) {
    if (unsaved > 0) await save(ctx.stateDir);
  },
});
