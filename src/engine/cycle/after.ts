/**
 * After: the remote action of `after:` (delete or move), run only once the file is processed and
 * the ledger committed. A failure is logged, never the file's: the data is safe in the landing
 * tree and the ledger.
 */
import { coerceError, errorCode, NotFoundError } from '../../errors.js';
import type { FileRecord } from '../../ledger/ledger.js';
import { formatVersion } from '../../ledger/version.js';
import type { CycleContext } from './context.js';

export async function applyAfter(ctx: CycleContext, rec: FileRecord): Promise<void> {
  const { src, source } = ctx;
  const after = src.after;
  if (!after) return;
  const signal = ctx.opts.signal;
  const flog = ctx.log.child({ path: rec.path, version: formatVersion(rec) });
  try {
    if (after.action === 'delete') {
      if (!source.remove) throw new Error(`${src.protocol} sources cannot delete files`);
      await source.remove(rec.path, { signal });
    } else {
      if (!source.rename) throw new Error(`${src.protocol} sources cannot move files`);
      // Flat into the directory: radar feeds name files uniquely by station and time.
      const to = `${after.dir}/${rec.path.slice(rec.path.lastIndexOf('/') + 1)}`;
      await source.rename(rec.path, to, { signal });
    }
    flog.info(
      { event: 'file.after_done', action: after.action },
      `remote file ${after.action === 'delete' ? 'deleted' : 'moved'}`,
    );
  } catch (thrown) {
    const err = coerceError(thrown);
    // The remote file is not there: a delete or move of it has nothing left to do.
    if (err instanceof NotFoundError) return;
    flog.warn(
      { event: 'file.after_failed', action: after.action, err: { code: errorCode(err), message: err.message } },
      `after ${after.action}: ${err.message}`,
    );
  }
}
