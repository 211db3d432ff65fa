/** One retention batch, in the caller's transaction: the budget of `core/prune.ts`, the guard of `core/guards.ts`. */

import { prunableSql } from '../../core/guards.js';
import { dirsOf, PruneBudget } from '../../core/prune.js';
import type { PruneResult, PruneRules } from '../../records.js';
import type { Q } from '../pool.js';
import { dropDigests } from './write-listing.js';

export async function prune(c: Q, rules: PruneRules, opts: { limit: number; dryRun?: boolean }): Promise<PruneResult> {
  const budget = new PruneBudget(opts.limit);
  let files = 0;
  let pluginRuns = 0;
  for (const w of rules.windows) {
    if (!budget.open()) break;
    const found = await c.query<{ id: number; path: string }>(
      `SELECT id, path FROM files WHERE source = $1 AND mtime_ms < $2 AND ${prunableSql('$3')} LIMIT $4`,
      [w.source, w.mtimeBeforeMs, rules.quarantinedBeforeMs, budget.ask],
    );
    const batch = budget.take(found.rows);
    const ids = batch.map((r) => r.id);
    if (ids.length > 0) {
      const n = await c.query<{ n: number }>(
        'SELECT count(*) AS n FROM plugin_runs WHERE file_id = ANY($1::bigint[])',
        [ids],
      );
      pluginRuns += n.rows[0]?.n ?? 0;
      files += ids.length;
    }
    if (opts.dryRun) continue;
    if (ids.length > 0) {
      await c.query('DELETE FROM files WHERE id = ANY($1::bigint[])', [ids]);
      await dropDigests(c, w.source, dirsOf(batch));
    }
    // A digest not rewritten for a whole window describes a directory no longer listed
    // differently; if it still is listed, the next listing diffs it entry by entry again.
    await c.query('DELETE FROM listing_digests WHERE source = $1 AND stored_ms < $2', [w.source, w.mtimeBeforeMs]);
  }
  return { files, pluginRuns, more: budget.more };
}
