/**
 * A lateness transition as the outbox records it: `late` / `on-time`, the product name as the
 * fact's path, and the product's rule and newest file (events/cloudevents.ts makes the CloudEvent).
 */
import type { EventFact, ProductEventKind } from '../ledger/records.js';
import type { ProductTransition } from './tracker.js';

export function productEvent(t: ProductTransition): { kind: ProductEventKind; fact: EventFact } {
  const s = t.status;
  return {
    kind: t.state,
    fact: {
      path: t.product,
      sizeBytes: 0,
      mtimeMs: s.newestMtimeMs ?? 0,
      product: {
        product: t.product,
        everyMs: s.everyMs,
        graceMs: s.graceMs,
        newestMtimeMs: s.newestMtimeMs,
        arrivedMs: s.arrivedMs,
        lateAtMs: s.lateAtMs,
      },
    },
  };
}
