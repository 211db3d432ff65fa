/**
 * Ledger retention: which rows may go, and pruning them in small batches. A version may be
 * deleted once its file can no longer be taken from a listing (older than the source's maxAge,
 * which `retention.keep` supplies for sources without one), so a pruned file is never fetched
 * again; the margin covers a config whose maxAge is raised a little later.
 */
import type { Config } from '../config/load.js';
import type { LedgerRetention, LedgerVolumes, PruneRules } from './ledger.js';

/** Rows are kept this long past their source's window (less for windows shorter than it). */
export const PRUNE_MARGIN_MS = 3_600_000;
/** Versions per transaction: short enough that a claim never waits long behind a prune. */
export const PRUNE_BATCH = 500;
/** Batches per pass; the rest waits for the next pass (bounded work per timer tick). */
const MAX_BATCHES_PER_PASS = 2_000;

export interface RetentionPlan {
  readonly rules: PruneRules;
  /** Sources with no window at all: their rows are kept forever. */
  readonly unbounded: readonly string[];
}

export function retentionPlan(config: Pick<Config, 'sources' | 'retention'>, nowMs: number): RetentionPlan {
  const windows: Array<{ source: string; mtimeBeforeMs: number }> = [];
  const unbounded: string[] = [];
  for (const s of config.sources) {
    if (s.maxAgeMs === undefined) unbounded.push(s.name);
    else windows.push({ source: s.name, mtimeBeforeMs: nowMs - s.maxAgeMs - Math.min(PRUNE_MARGIN_MS, s.maxAgeMs) });
  }
  return { rules: { windows, quarantinedBeforeMs: nowMs - config.retention.quarantinedMs }, unbounded };
}

export interface PruneTotals {
  files: number;
  pluginRuns: number;
  /** Radar volume versions (with their members and runs). */
  volumes: number;
  batches: number;
  /** More rows remained when the pass stopped (batch cap or abort). */
  more: boolean;
}

/** Prune batch after batch, yielding to the event loop in between, until nothing is left. */
export async function pruneLedger(
  ledger: LedgerRetention & LedgerVolumes,
  rules: PruneRules,
  opts: { nowMs: number; dryRun?: boolean; signal?: AbortSignal; batch?: number },
): Promise<PruneTotals> {
  const totals: PruneTotals = { files: 0, pluginRuns: 0, volumes: 0, batches: 0, more: false };
  if (rules.windows.length === 0) return totals;
  // A dry run deletes nothing, so one pass with a large limit counts what would go.
  const limit = opts.dryRun ? Number.MAX_SAFE_INTEGER : (opts.batch ?? PRUNE_BATCH);
  for (let i = 0; i < MAX_BATCHES_PER_PASS; i++) {
    if (opts.signal?.aborted) {
      totals.more = true;
      break;
    }
    const r = await ledger.prune(rules, { limit, nowMs: opts.nowMs, ...(opts.dryRun && { dryRun: true }) });
    totals.files += r.files;
    totals.pluginRuns += r.pluginRuns;
    totals.batches++;
    totals.more = r.more;
    if (!r.more || opts.dryRun) break;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (ledger.volumes) {
    for (let i = 0; i < MAX_BATCHES_PER_PASS && !opts.signal?.aborted; i++) {
      const r = await ledger.volumes.pruneVolumes(rules, { limit, ...(opts.dryRun && { dryRun: true }) });
      totals.volumes += r.volumes;
      if (!r.more || opts.dryRun) break;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  return totals;
}
