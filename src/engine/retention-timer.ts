/**
 * The daemon's background retention: every `retention.every`, prune what the current config's
 * windows allow (in small batches, yielding between them) and refresh the ledger-size gauges.
 * One pass at a time; a failed pass is logged and the next one tries again.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import type { Ledger } from '../ledger/ledger.js';
import { pruneLedger, retentionPlan } from '../ledger/retention.js';

export interface RetentionTimerOptions {
  ledger: Ledger;
  /** The config in force (it changes on SIGHUP). */
  config: () => Pick<Config, 'sources' | 'retention'>;
  log: Logger;
  signal: AbortSignal;
  onPruned?(files: number): void;
  onStats?(stats: Awaited<ReturnType<Ledger['stats']>>): void;
  /** The volume plugins configured now (they change on SIGHUP): runs of others are owed nothing. */
  volumePlugins?: () => readonly string[];
  /** The first pass runs this soon after start. @default 10 s */
  firstDelayMs?: number;
}

export function startRetentionTimer(opts: RetentionTimerOptions): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const pass = async () => {
    const config = opts.config();
    const plan = retentionPlan(config, Date.now());
    const volumePlugins = opts.volumePlugins?.();
    const rules = volumePlugins ? { ...plan.rules, volumePlugins } : plan.rules;
    const totals = await pruneLedger(opts.ledger, rules, { nowMs: Date.now(), signal: opts.signal });
    if (totals.files > 0 || totals.volumes > 0) {
      opts.onPruned?.(totals.files);
      opts.log.info(
        {
          event: 'ledger.pruned',
          files: totals.files,
          pluginRuns: totals.pluginRuns,
          volumes: totals.volumes,
          batches: totals.batches,
        },
        `retention: pruned ${totals.files} file version(s)${totals.volumes ? ` and ${totals.volumes} volume version(s)` : ''}`,
      );
    }
    opts.onStats?.(await opts.ledger.stats());
  };
  const schedule = (delayMs: number) => {
    if (opts.signal.aborted) return;
    timer = setTimeout(() => {
      running = pass()
        .catch((err: unknown) => opts.log.warn({ err, event: 'ledger.prune_failed' }, 'retention pass failed'))
        .finally(() => {
          running = undefined;
          schedule(opts.config().retention.everyMs);
        });
    }, delayMs);
    timer.unref();
  };
  schedule(opts.firstDelayMs ?? 10_000);
  return {
    async stop() {
      clearTimeout(timer);
      await running;
    },
  };
}

/** The start-up line for sources whose rows are never pruned; undefined when every source has a window. */
export function unboundedWarning(config: Pick<Config, 'sources' | 'retention'>): string | undefined {
  const { unbounded } = retentionPlan(config, Date.now());
  if (unbounded.length === 0) return undefined;
  return `the ledger grows without bound for ${unbounded.join(', ')}: set maxAge on these sources or retention.keep (e.g. 30d) to prune old rows`;
}
