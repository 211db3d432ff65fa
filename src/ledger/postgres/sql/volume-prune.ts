/**
 * One retention batch of volume versions, in the caller's transaction (the budget of
 * `core/prune.ts`): processed, superseded and collecting versions past their source's window,
 * quarantined ones given up before the hold, and failed ones owed nothing by a configured plugin.
 * Members and runs go with them.
 */
import { PruneBudget } from '../../core/prune.js';
import type { PruneRules } from '../../records.js';
import type { Q } from '../pool.js';

export async function pruneVolumes(
  c: Q,
  rules: PruneRules,
  opts: { readonly limit: number; readonly dryRun?: boolean },
): Promise<{ volumes: number; more: boolean }> {
  const budget = new PruneBudget(opts.limit);
  let volumes = 0;
  for (const w of rules.windows) {
    if (!budget.open()) break;
    const found = await c.query<{ id: number }>(
      `SELECT id FROM volumes v WHERE source = $1 AND last_member_ms < $2 AND claimed_by IS NULL
         AND (state IN ('processed', 'superseded', 'collecting') OR (state = 'quarantined' AND done_ms < $3)
           OR (state = 'failed' AND $4::text[] IS NOT NULL AND NOT EXISTS (
             SELECT 1 FROM volume_runs r WHERE r.volume_id = v.id AND r.state IN ('failed', 'running')
               AND r.plugin = ANY($4::text[]))))
       LIMIT $5`,
      [w.source, w.mtimeBeforeMs, rules.quarantinedBeforeMs, rules.volumePlugins ?? null, budget.ask],
    );
    const ids = budget.take(found.rows).map((r) => r.id);
    volumes += ids.length;
    if (!opts.dryRun && ids.length > 0) await c.query('DELETE FROM volumes WHERE id = ANY($1::bigint[])', [ids]);
  }
  return { volumes, more: budget.more };
}
