/**
 * Lifecycle events (failed, quarantined, processed, outputs; a product late or on time again) as CloudEvents 1.0 in the JSON
 * event format (structured mode), with a severity, a title and a description for people.
 */
import {
  type EventKind,
  isProductEventKind,
  isVolumeEventKind,
  type OutboxEvent,
  type ProductFact,
  type VolumeFact,
} from '../ledger/ledger.js';
import { rfc3339 } from './wnm.js';

export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  severity: 'info' | 'warning' | 'error';
  data: Record<string, unknown>;
}

const SEVERITY: Record<EventKind, CloudEvent['severity']> = {
  fetched: 'info',
  processed: 'info',
  output: 'info',
  failed: 'warning',
  quarantined: 'error',
  gone: 'info',
  'volume-complete': 'info',
  'volume-partial': 'info',
  'volume-processed': 'info',
  'volume-output': 'info',
  'volume-failed': 'warning',
  'volume-quarantined': 'error',
  late: 'warning',
  'on-time': 'info',
};

function title(e: OutboxEvent): string {
  const f = e.fact;
  switch (e.kind) {
    case 'fetched':
      return `${e.source}: ${f.path} landed`;
    case 'processed':
      return `${e.source}: ${f.path} processed`;
    case 'output':
      return `${e.source}: ${f.path} produced ${f.output?.path ?? 'an output'}`;
    case 'failed':
      return `${e.source}: ${f.path} failed (${f.stage ?? 'fetch'}), will be retried`;
    case 'quarantined':
      return `${e.source}: ${f.path} quarantined after ${f.attempts ?? 0} attempts`;
    case 'gone':
      return `${e.source}: ${f.path} removed upstream`;
    case 'volume-complete':
      return `${e.source}: volume ${f.path} complete`;
    case 'volume-partial':
      return `${e.source}: volume ${f.path} declared partial`;
    case 'volume-processed':
      return `${e.source}: volume ${f.path} processed`;
    case 'volume-output':
      return `${e.source}: volume ${f.path} produced ${f.output?.path ?? 'an output'}`;
    case 'volume-failed':
      return `${e.source}: volume ${f.path} failed (${f.plugin ?? 'a volume plugin'}), will be retried`;
    case 'volume-quarantined':
      return `${e.source}: volume ${f.path} quarantined after ${f.attempts ?? 0} attempts`;
    case 'late':
      return `${e.source}: ${f.path} is late (nothing within ${Math.round(((f.product?.everyMs ?? 0) + (f.product?.graceMs ?? 0)) / 1000)} s)`;
    case 'on-time':
      return `${e.source}: ${f.path} is on time again`;
  }
}

/** `org.poller.file.<kind>`, `org.poller.volume.<kind>` for volume events, `org.poller.product.<kind>` for lateness. */
function eventType(kind: EventKind): string {
  if (isVolumeEventKind(kind)) return `org.poller.volume.${kind.slice('volume-'.length)}`;
  return isProductEventKind(kind) ? `org.poller.product.${kind}` : `org.poller.file.${kind}`;
}

export function buildCloudEvent(e: OutboxEvent, centreId: string): CloudEvent {
  const f = e.fact;
  if (isProductEventKind(e.kind) && f.product) return productCloudEvent(e, f.product, centreId);
  return {
    specversion: '1.0',
    id: e.id,
    source: `/poller/${centreId}/${e.source}`,
    type: eventType(e.kind),
    subject: f.path,
    time: rfc3339(e.atMs),
    datacontenttype: 'application/json',
    severity: SEVERITY[e.kind],
    data: {
      title: title(e),
      description:
        f.message ??
        (e.kind === 'processed' || e.kind === 'volume-processed'
          ? `every matching plugin succeeded${f.outputs?.length ? `; ${f.outputs.length} output(s)` : ''}`
          : title(e)),
      source: e.source,
      path: f.path,
      sizeBytes: f.sizeBytes,
      mtime: rfc3339(f.mtimeMs),
      ...(f.stage && { stage: f.stage }),
      ...(f.errorCode && { errorCode: f.errorCode }),
      ...(f.attempts !== undefined && { attempts: f.attempts }),
      ...(f.outputs && { outputs: f.outputs }),
      ...(f.output && { output: f.output }),
      ...(f.plugin && { plugin: f.plugin }),
      ...(f.volume && { volume: volumeData(f.volume) }),
    },
  };
}

/** The volume as lifecycle events describe it: key, version, fields, completeness and members. */
function volumeData(v: VolumeFact): Record<string, unknown> {
  return {
    key: v.key,
    version: v.version,
    fields: v.fields,
    complete: !v.partial,
    partial: v.partial,
    members: v.members.map((m) => ({ member: m.member, path: m.path, sizeBytes: m.sizeBytes })),
  };
}

/** `late` / `on-time`: the product, its rule, and its newest file as far as this process knows. */
function productCloudEvent(e: OutboxEvent, p: ProductFact, centreId: string): CloudEvent {
  const at = (ms: number | null) => (ms === null ? null : rfc3339(ms));
  return {
    specversion: '1.0',
    id: e.id,
    source: `/poller/${centreId}/${e.source}`,
    type: eventType(e.kind),
    subject: p.product,
    time: rfc3339(e.atMs),
    datacontenttype: 'application/json',
    severity: SEVERITY[e.kind],
    data: {
      title: title(e),
      description:
        p.arrivedMs === null
          ? `no file of ${p.product} seen yet`
          : `newest file of ${p.product} landed at ${rfc3339(p.arrivedMs)}`,
      source: e.source,
      product: p.product,
      state: e.kind,
      every: Math.round(p.everyMs / 1000),
      grace: Math.round(p.graceMs / 1000),
      newestMtime: at(p.newestMtimeMs),
      newestArrived: at(p.arrivedMs),
      lateAt: rfc3339(p.lateAtMs),
    },
  };
}
