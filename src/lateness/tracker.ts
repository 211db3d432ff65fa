/**
 * Lateness per product: the newest file of each (source, product) against its rule's cadence
 * plus grace. Fed by the fetched files, evaluated on a clock; the metric, the status page, the
 * API and the `late` / `on-time` events all read one evaluation, so they never disagree.
 */
import { type ExpectRule, matchProduct } from './rules.js';

/**
 * `on-time`: a file came within cadence + grace. `late`: none since. `waiting`: none seen yet and
 * the process has not been up for cadence + grace (no verdict yet).
 */
export type ProductState = 'on-time' | 'late' | 'waiting';

export interface ProductStatus {
  source: string;
  product: string;
  state: ProductState;
  everyMs: number;
  graceMs: number;
  /** Remote mtime of the newest file of the product; null when none was seen. */
  newestMtimeMs: number | null;
  /** When the newest file landed here; null when none was seen. */
  arrivedMs: number | null;
  /** When it is (or was) due to count as late: arrival (or start) + every + grace. */
  lateAtMs: number;
}

/** A product that changed between `late` and `on-time` since the last evaluation. */
export interface ProductTransition {
  source: string;
  product: string;
  state: 'late' | 'on-time';
  status: ProductStatus;
}

interface Entry {
  rule: ExpectRule;
  newestMtimeMs: number | null;
  arrivedMs: number | null;
  /** The newest file's path: a reload finds the product's new rule by it. */
  path: string | null;
  /** The state last reported, for transitions. */
  reported: ProductState;
}

export interface LatenessTracker {
  /**
   * A file of `source` landed at `atMs` (default: its mtime); ignored when no rule of the source
   * matches it. Lateness runs on arrival, not on the mtime: listings often give minutes only, and
   * the server's clock is not ours. A file older than the product's newest (a backfill) is no news.
   */
  fileFetched(source: string, remotePath: string, mtimeMs: number, atMs?: number): void;
  /** Every product's state now, in a stable order (source, then product). */
  evaluate(nowMs: number): { products: ProductStatus[]; transitions: ProductTransition[] };
  /** Replace the rules (a reload); products of kept rules keep what was seen of them. */
  setRules(rules: ReadonlyMap<string, readonly ExpectRule[]>): void;
}

export function createLatenessTracker(
  rules: ReadonlyMap<string, readonly ExpectRule[]>,
  startedAtMs: number,
): LatenessTracker {
  let bySource = rules;
  const entries = new Map<string, Map<string, Entry>>();
  const declare = () => {
    for (const [source, list] of bySource) {
      const products = entries.get(source) ?? new Map<string, Entry>();
      entries.set(source, products);
      for (const rule of list)
        for (const product of rule.declared)
          if (!products.has(product))
            products.set(product, { rule, newestMtimeMs: null, arrivedMs: null, path: null, reported: 'waiting' });
    }
    for (const source of entries.keys()) if (!bySource.has(source)) entries.delete(source);
  };
  declare();
  return {
    fileFetched(source, remotePath, mtimeMs, atMs = mtimeMs) {
      const list = bySource.get(source);
      if (!list) return;
      const hit = matchProduct(list, remotePath);
      if (!hit) return;
      const products = entries.get(source) ?? new Map<string, Entry>();
      entries.set(source, products);
      const e = products.get(hit.product);
      if (!e) {
        const entry = { rule: hit.rule, newestMtimeMs: mtimeMs, arrivedMs: atMs, path: remotePath };
        products.set(hit.product, { ...entry, reported: 'waiting' });
      }
      // A backfill lands old files after new ones: a file counts as an arrival only when it is at
      // most one cadence older than the newest (listings at minute precision, uploads out of order).
      else if (e.newestMtimeMs === null || mtimeMs >= e.newestMtimeMs - e.rule.everyMs) {
        if (e.newestMtimeMs === null || mtimeMs >= e.newestMtimeMs) {
          e.newestMtimeMs = mtimeMs;
          e.path = remotePath;
        }
        e.arrivedMs = Math.max(e.arrivedMs ?? atMs, atMs);
      }
    },
    evaluate(nowMs) {
      const products: ProductStatus[] = [];
      const transitions: ProductTransition[] = [];
      for (const source of [...entries.keys()].sort()) {
        const list = entries.get(source) ?? new Map<string, Entry>();
        for (const product of [...list.keys()].sort()) {
          const e = list.get(product) as Entry;
          const status = statusOf(source, product, e, nowMs, startedAtMs);
          products.push(status);
          if (status.state !== 'waiting' && status.state !== e.reported) {
            // The first on-time verdict is not news; a recovery after late is.
            if (status.state === 'late' || e.reported === 'late')
              transitions.push({ source, product, state: status.state, status });
            e.reported = status.state;
          }
        }
      }
      return { products, transitions };
    },
    setRules(next) {
      bySource = next;
      for (const [source, list] of entries) {
        const rulesOf = next.get(source) ?? [];
        for (const [product, e] of list) {
          const hit = e.path === null ? undefined : matchProduct(rulesOf, e.path);
          const rule = hit?.product === product ? hit.rule : rulesOf.find((r) => r.declared.includes(product));
          if (rule) e.rule = rule;
          else list.delete(product);
        }
      }
      declare();
    },
  };
}

function statusOf(source: string, product: string, e: Entry, nowMs: number, startedAtMs: number): ProductStatus {
  const { everyMs, graceMs } = e.rule;
  const lateAtMs = (e.arrivedMs ?? startedAtMs) + everyMs + graceMs;
  const state: ProductState = nowMs <= lateAtMs ? (e.arrivedMs === null ? 'waiting' : 'on-time') : 'late';
  return { source, product, state, everyMs, graceMs, newestMtimeMs: e.newestMtimeMs, arrivedMs: e.arrivedMs, lateAtMs };
}
