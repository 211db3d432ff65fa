/**
 * What `poller retry` makes due, decided once: the file versions and the plugin runs a retry
 * filter reaches. A failed (or quarantined) fetch is due again as a whole; a version that failed
 * in its plugins is due again only through runs the filter takes (its failed ones, its
 * quarantined ones with `includeQuarantined`, of `plugin` when given).
 */
import type { FailedStage, FileState, PluginRunState } from '../records.js';

export interface RunFilter {
  readonly plugin?: string;
  readonly includeQuarantined: boolean;
}

/** The states a retry takes: failed, and quarantined when asked. */
export function retryStates(includeQuarantined: boolean): Array<'failed' | 'quarantined'> {
  return includeQuarantined ? ['failed', 'quarantined'] : ['failed'];
}

/** The runs of a file (or volume) a retry makes due again. */
export function runsToRetry<R extends { readonly plugin: string; readonly state: PluginRunState }>(
  runs: readonly R[],
  f: RunFilter,
): R[] {
  return runs.filter(
    (r) =>
      (r.state === 'failed' || (f.includeQuarantined && r.state === 'quarantined')) &&
      (!f.plugin || r.plugin === f.plugin),
  );
}

export interface RetryPlan {
  /** Versions made due (state failed, retry now; a quarantined fetch starts its attempts again). */
  readonly fileIds: number[];
  /** Runs made due (a quarantined run starts its attempts again). */
  readonly runs: Array<{ readonly fileId: number; readonly plugin: string }>;
}

/**
 * The plan over the candidate rows (already in a retry state, of the filter's source and path)
 * and each one's runs.
 */
export function planRetry<R extends { readonly plugin: string; readonly state: PluginRunState }>(
  rows: readonly { readonly id: number; readonly state: FileState; readonly stage: FailedStage | null }[],
  runsOf: (fileId: number) => readonly R[],
  f: RunFilter,
): RetryPlan {
  const plan: RetryPlan = { fileIds: [], runs: [] };
  for (const row of rows) {
    if (row.stage === 'process') {
      const runs = runsToRetry(runsOf(row.id), f);
      if (runs.length === 0) continue;
      for (const r of runs) plan.runs.push({ fileId: row.id, plugin: r.plugin });
    } else if (f.plugin) continue;
    plan.fileIds.push(row.id);
  }
  return plan;
}
