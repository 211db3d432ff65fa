/**
 * WIS2 Notification Messages (WMO WIS2 Notification Message standard, core conformance class):
 * a GeoJSON Feature announcing one landed file. Built from the ledger's facts when the event is
 * sent, so the outbox holds no wire format.
 */
import type { Geometry, WnmSourceConfig } from '../config/load.js';
import type { EventFact } from '../ledger/ledger.js';
import { mediaTypeOf } from './media-type.js';

export const WNM_CONFORMS_TO = 'http://wis.wmo.int/spec/wnm/1/conf/core';
/** The standard's limits: the whole message, and inline content as encoded. */
export const WNM_MAX_BYTES = 8192;
export const WNM_MAX_INLINE_BYTES = 4096;

export interface WnmLink {
  href: string;
  /** `deletion`: the data at `href` was removed (no type, length or integrity then). */
  /** `describedby`: a volume's manifest. */
  rel: 'canonical' | 'update' | 'deletion' | 'describedby';
  type?: string;
  length?: number;
  title?: string;
}

export interface WnmMessage {
  id: string;
  conformsTo: string[];
  type: 'Feature';
  geometry: Geometry | null;
  properties: {
    data_id: string;
    /** The operator's WCMP2 record id (config); absent when none is configured, never made up. */
    metadata_id?: string;
    pubtime: string;
    datetime: string | null;
    integrity?: { method: 'sha512'; value: string };
    content?: { encoding: 'base64'; size: number; value: string };
    /** Volume notifications: the volume version announced (poller's own property, see volume-wnm.ts). */
    volume?: Record<string, unknown>;
  };
  links: WnmLink[];
}

export interface WnmInput {
  readonly id: string;
  readonly centreId: string;
  readonly source: string;
  /** Credential-free URL of the source root (the origin of the file). */
  readonly sourceUrl: string;
  readonly atMs: number;
  readonly fact: EventFact;
  readonly wnm: WnmSourceConfig | undefined;
  /** `href` = `<publicBaseUrl>/<source>/<path>` when set, else the origin URL. */
  readonly publicBaseUrl?: string;
  /** The file's bytes, base64, when it is small enough to go inline. */
  readonly inlineBase64?: string;
  /** Announce the removal of the file (a `deletion` link) rather than its arrival. */
  readonly deletion?: boolean;
}

/** The operator's `metadata_id`, when configured (REC metadata_id: recommended, not required). */
export function metadataId(input: Pick<WnmInput, 'wnm'>): { metadata_id?: string } {
  return input.wnm?.metadataId !== undefined ? { metadata_id: input.wnm.metadataId } : {};
}

/** RFC 3339 in UTC, as the standard's examples write it. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}

/** The data time from the remote path by the source's pattern (named groups Y m d H M S), else null. */
export function datetimeFromPath(p: string, pattern: RegExp | undefined): string | null {
  const g = pattern?.exec(p)?.groups;
  if (!g?.['Y']) return null;
  const n = (k: string, dflt: number) => (g[k] === undefined ? dflt : Number(g[k]));
  const ms = Date.UTC(n('Y', 1970), n('m', 1) - 1, n('d', 1), n('H', 0), n('M', 0), n('S', 0));
  return Number.isFinite(ms) ? rfc3339(ms) : null;
}

export function encodePath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

export function wnmHref(input: Pick<WnmInput, 'publicBaseUrl' | 'sourceUrl' | 'source' | 'fact'>): string {
  const rel = encodePath(input.fact.path);
  if (input.publicBaseUrl) return `${input.publicBaseUrl}/${encodeURIComponent(input.source)}/${rel}`;
  return `${input.sourceUrl.replace(/\/+$/, '')}/${rel}`;
}

export function buildWnm(input: WnmInput): WnmMessage {
  const { fact } = input;
  const properties: WnmMessage['properties'] = {
    data_id: `${input.centreId}/${input.source}/${fact.path}`,
    ...metadataId(input),
    pubtime: rfc3339(input.atMs),
    datetime: datetimeFromPath(fact.path, input.wnm?.datetimePattern),
  };
  const link: WnmLink = input.deletion
    ? { href: wnmHref(input), rel: 'deletion' }
    : {
        href: wnmHref(input),
        rel: fact.update ? 'update' : 'canonical',
        type: input.wnm?.mediaType ?? mediaTypeOf(fact.path),
        length: fact.sizeBytes,
      };
  if (fact.sha512 && !input.deletion) properties.integrity = { method: 'sha512', value: fact.sha512 };
  if (input.inlineBase64 !== undefined && input.inlineBase64.length <= WNM_MAX_INLINE_BYTES && !input.deletion)
    properties.content = { encoding: 'base64', size: fact.sizeBytes, value: input.inlineBase64 };
  return {
    id: input.id,
    conformsTo: [WNM_CONFORMS_TO],
    type: 'Feature',
    geometry: input.wnm?.geometry ?? null,
    properties,
    links: [link],
  };
}

/**
 * The message as sent: inline content is dropped first when the whole would pass the limit;
 * undefined when even without it the message is over 8192 bytes (it is never sent).
 */
export function encodeWnm(message: WnmMessage): Buffer | undefined {
  let body = Buffer.from(JSON.stringify(message));
  if (body.length > WNM_MAX_BYTES && message.properties.content) {
    const { content: _dropped, ...rest } = message.properties;
    body = Buffer.from(JSON.stringify({ ...message, properties: rest }));
  }
  return body.length > WNM_MAX_BYTES ? undefined : body;
}
