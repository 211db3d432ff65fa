/**
 * archive: file each landed file into a dated tree, `<root>/<source>/<YYYY>/<MM>/<DD>/<name>`,
 * by the file's remote modification time (UTC). Copy (default) or hard link (same filesystem,
 * no extra space). Writes to a temporary name and renames, so the archive never holds half a file.
 */
import { copyFile, link, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { definePlugin, PermanentError } from '../../src/plugins/api.js';

export default definePlugin({
  name: 'archive',
  options: z.strictObject({
    /** Root of the archive tree. */
    root: z.string().min(1),
    /** `copy` or `link` (hard link: the landing and archive must share a filesystem). */
    mode: z.enum(['copy', 'link']).default('copy'),
    /** Directory layout below root; tokens {source} {YYYY} {MM} {DD} {HH} {dir}. */
    layout: z.string().default('{source}/{YYYY}/{MM}/{DD}'),
  }),
  timeoutMs: 120_000,
  // A copy or hard link is libuv I/O, not JavaScript work: in a worker it would only add a hand-off per file.
  isolate: 'none',
  async setup(ctx) {
    await mkdir(ctx.options.root, { recursive: true });
  },
  async process(file, ctx) {
    const t = new Date(file.mtimeMs);
    const pad = (n: number) => String(n).padStart(2, '0');
    const tokens: Record<string, string> = {
      source: file.source,
      YYYY: String(t.getUTCFullYear()),
      MM: pad(t.getUTCMonth() + 1),
      DD: pad(t.getUTCDate()),
      HH: pad(t.getUTCHours()),
      dir: path.posix.dirname(file.remotePath),
    };
    const rel = ctx.options.layout.replace(/\{(\w+)\}/g, (all, k: string) => tokens[k] ?? all);
    const root = path.resolve(ctx.options.root);
    const dest = path.resolve(root, rel, path.posix.basename(file.remotePath));
    if (!dest.startsWith(root + path.sep)) {
      throw new PermanentError(
        'ARCHIVE_OUTSIDE_ROOT',
        `${file.remotePath}: layout puts it outside ${root}; fix options.layout`,
      );
    }
    await mkdir(path.dirname(dest), { recursive: true });
    ctx.signal.throwIfAborted();
    const tmp = `${dest}.tmp-${process.pid}`;
    await rm(tmp, { force: true });
    if (ctx.options.mode === 'link') await link(file.localPath, tmp);
    else await copyFile(file.localPath, tmp);
    await rename(tmp, dest);
    ctx.emit({ path: dest, kind: 'archive' });
    ctx.log.debug({ dest }, 'archived');
  },
});
