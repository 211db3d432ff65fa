/**
 * The daemon's side of lateness per product: a tracker fed by fetched files, seeded from the
 * ledger's newest versions at start (a restart keeps what it knew), evaluated on a clock so a
 * product that goes silent is flagged without anyone scraping, and each change between `late`
 * and `on-time` logged and handed on (metrics, events).
 */
import type { Logger } from 'pino';
import type { FileRecord } from '../ledger/ledger.js';
import { compileExpectRule, type ExpectRule, type ExpectRuleInput } from './rules.js';

/** What lateness needs of a source's config. */
export interface ExpectingSource {
  readonly name: string;
  readonly enabled: boolean;
  readonly expect?: readonly ExpectRuleInput[] | undefined;
}

import { createLatenessTracker, type ProductStatus, type ProductTransition } from './tracker.js';

/** Versions per source read at start to learn each product's newest file. */
export const SEED_VERSIONS = 1000;
/** Versions per source read again before each evaluation on a shared ledger. */
export const REFRESH_VERSIONS = 200;
// Evaluations are a tenth of the shortest cadence + grace apart, within these bounds.
const MIN_TICK_MS = 500;
const MAX_TICK_MS = 30_000;

export interface LatenessWatchOptions {
  sources: readonly ExpectingSource[];
  startedAtMs: number;
  log: Logger;
  /** Each evaluation's product states (the metric). */
  onEvaluated?: (products: readonly ProductStatus[]) => void;
  /** A product turned late, or on time again. */
  onTransition?: (t: ProductTransition) => void;
  /**
   * Before each evaluation on the clock: learn what other processes landed (a shared ledger,
   * where this process fetches only its share of a source), so no product is flagged late
   * that another instance got. A failure is logged; the evaluation goes on with what is known.
   */
  refresh?: (sources: readonly string[]) => Promise<void>;
  now?: () => number;
}

export interface LatenessWatch {
  fileFetched(source: string, remotePath: string, mtimeMs: number): void;
  /** Landed versions from the ledger (newest first is fine): what was known before this start. */
  seed(files: readonly FileRecord[]): void;
  /** Evaluate now (also done on the clock). */
  evaluate(): ProductStatus[];
  reload(sources: readonly ExpectingSource[]): void;
  stop(): void;
}

export function rulesBySource(sources: readonly ExpectingSource[]): Map<string, ExpectRule[]> {
  const out = new Map<string, ExpectRule[]>();
  for (const s of sources) if (s.enabled && s.expect?.length) out.set(s.name, s.expect.map(compileExpectRule));
  return out;
}

/** Landed: the file is in the landing tree (a plugin may have failed on it since). */
export function isLanded(f: Pick<FileRecord, 'state' | 'stage'>): boolean {
  return (
    f.state === 'fetched' ||
    f.state === 'processed' ||
    ((f.state === 'failed' || f.state === 'quarantined') && f.stage === 'process')
  );
}

export function startLatenessWatch(o: LatenessWatchOptions): LatenessWatch {
  const now = o.now ?? Date.now;
  let rules = rulesBySource(o.sources);
  const tracker = createLatenessTracker(rules, o.startedAtMs);
  const evaluate = (): ProductStatus[] => {
    const { products, transitions } = tracker.evaluate(now());
    for (const t of transitions) {
      const ageS = t.status.newestMtimeMs === null ? null : Math.round((now() - t.status.newestMtimeMs) / 1000);
      const line = {
        event: `product.${t.state === 'late' ? 'late' : 'on_time'}`,
        source: t.source,
        product: t.product,
        newestFileAgeS: ageS,
      };
      if (t.state === 'late')
        o.log.warn(
          line,
          `${t.source}: ${t.product} is late (nothing within ${Math.round((t.status.everyMs + t.status.graceMs) / 1000)} s)`,
        );
      else o.log.info(line, `${t.source}: ${t.product} is on time again`);
      o.onTransition?.(t);
    }
    o.onEvaluated?.(products);
    return products;
  };
  let timer: NodeJS.Timeout | undefined;
  let ticking = false;
  const tick = async () => {
    if (ticking) return; // a slow refresh: skip this beat rather than pile up
    ticking = true;
    try {
      await o.refresh?.([...rules.keys()]);
    } catch (err) {
      o.log.warn(
        { event: 'lateness.refresh_failed', err: (err as Error).message },
        'lateness: ledger not read, evaluating with what this process saw',
      );
    } finally {
      ticking = false;
    }
    if (timer) evaluate();
  };
  const schedule = () => {
    clearInterval(timer);
    timer = undefined;
    const windows = [...rules.values()].flat().map((r) => r.everyMs + r.graceMs);
    if (windows.length === 0) return;
    const tickMs = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.min(...windows) / 10));
    timer = setInterval(tick, tickMs);
    timer.unref();
  };
  schedule();
  return {
    fileFetched: (source, remotePath, mtimeMs) => tracker.fileFetched(source, remotePath, mtimeMs, now()),
    seed(files) {
      // Oldest first, so each product ends on its newest; a version's last change is when it landed (or after).
      for (const f of [...files].reverse())
        if (isLanded(f)) tracker.fileFetched(f.source, f.path, f.mtimeMs, f.updatedMs);
    },
    evaluate,
    reload(sources) {
      rules = rulesBySource(sources);
      tracker.setRules(rules);
      schedule();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}

/**
 * Lateness per product as the ledger alone tells it (`poller status`, no daemon): each product's
 * newest landed file among the last {@link SEED_VERSIONS} versions of its source. A declared
 * product never seen counts as late.
 */
export async function productsFromLedger(
  ledger: { files(q: { source: string; limit: number }): Promise<FileRecord[]> },
  sources: readonly ExpectingSource[],
  nowMs: number,
): Promise<ProductStatus[]> {
  const rules = rulesBySource(sources);
  if (rules.size === 0) return [];
  // ledger.files() answers newest first; the tracker wants them oldest first.
  const tracker = createLatenessTracker(rules, Number.NEGATIVE_INFINITY);
  for (const source of rules.keys())
    for (const f of (await ledger.files({ source, limit: SEED_VERSIONS })).reverse())
      if (isLanded(f)) tracker.fileFetched(f.source, f.path, f.mtimeMs, f.updatedMs);
  return tracker.evaluate(nowMs).products;
}
