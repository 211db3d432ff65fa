/**
 * WIS2 Notification Messages (WNM, a GeoJSON Feature) as they arrive from a broker: parsed and
 * checked into what a download needs, or a one-line reason why the message cannot be used.
 */
import type { Integrity } from '../source.js';

/** Hash methods of the WNM standard that Node can compute; the digest length checks the value. */
const DIGEST_BYTES: Record<string, number> = {
  sha256: 32,
  sha384: 48,
  sha512: 64,
  'sha3-256': 32,
  'sha3-384': 48,
  'sha3-512': 64,
};

/** A notification bigger than this is refused unread (the standard's own limit is far lower). */
export const MAX_NOTIFICATION_BYTES = 256 * 1024;

export interface Notification {
  /** The message's own `id` (a UUID): re-deliveries carry the same one. */
  readonly id: string;
  readonly dataId: string;
  /** The path the file is known by (ledger, globs, landing): `data_id` without leading slashes. */
  readonly path: string;
  readonly pubtimeMs: number;
  readonly href: string;
  /**
   * `canonical`, `update` for a changed version of data announced before, or `deletion`: the
   * data announced under `data_id` was removed (then `length` and `integrity` are not used).
   */
  readonly rel: 'canonical' | 'update' | 'deletion';
  readonly length?: number;
  readonly integrity?: Integrity;
}

export type Parsed = { ok: true; notification: Notification } | { ok: false; reason: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 3339 with a zone (`2026-12-02T10:00:00Z`, fractions allowed), as the standard asks. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** Base64, or hex as some publishers send despite the standard. */
function decodeDigest(value: string, bytes: number): Buffer | undefined {
  if (value.length === bytes * 2 && /^[0-9a-f]+$/i.test(value)) return Buffer.from(value, 'hex');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return undefined;
  const buf = Buffer.from(value, 'base64');
  return buf.length === bytes ? buf : undefined;
}

/** The link relations of the data a message announces (the standard: exactly one of them). */
const DATA_RELS = ['canonical', 'update', 'deletion'];

/** Schemes the standard allows in a link (REQ links D). */
const LINK_SCHEMES = ['http:', 'https:', 'ftp:', 'sftp:'];
/** Schemes a link is fetched by (through the HTTP source). */
const FETCH_SCHEMES = ['http:', 'https:'];

/** The link's URL, or why it cannot be used; a deletion's link is only named, never fetched. */
function checkHref(href: unknown, fetched: boolean): URL | string {
  let url: URL;
  try {
    url = new URL(String(href));
  } catch {
    return `link href ${JSON.stringify(href)} is not a URL`;
  }
  if (!LINK_SCHEMES.includes(url.protocol))
    return `link href scheme "${url.protocol.slice(0, -1)}" is not http, https, ftp or sftp`;
  if (fetched && !FETCH_SCHEMES.includes(url.protocol))
    return `link href scheme "${url.protocol.slice(0, -1)}" is not http or https`;
  if (url.username !== '' || url.password !== '')
    return 'link href carries credentials; poller never takes credentials from a notification';
  // A query (a signed or API URL) is sent as it is with the HTTP(S) request.
  try {
    if (/%2f/i.test(url.pathname)) throw new Error('encoded slash');
    decodeURIComponent(url.pathname);
  } catch {
    return 'link href has an encoded slash or a malformed escape in its path';
  }
  return url;
}

export function parseNotification(payload: Buffer): Parsed {
  const fail = (reason: string): Parsed => ({ ok: false, reason });
  if (payload.length > MAX_NOTIFICATION_BYTES)
    return fail(`message of ${payload.length} bytes is larger than ${MAX_NOTIFICATION_BYTES}`);
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch {
    return fail('not JSON');
  }
  if (!isObject(doc)) return fail('not a JSON object');
  if (doc['type'] !== 'Feature') return fail('"type" is not "Feature" (not a WIS2 Notification Message)');
  const id = doc['id'];
  if (typeof id !== 'string' || id === '') return fail('no "id"');
  const props = doc['properties'];
  if (!isObject(props)) return fail('no "properties"');
  const dataId = props['data_id'];
  if (typeof dataId !== 'string' || dataId.trim() === '') return fail('no "properties.data_id"');
  const path = dataId.replace(/^\/+/, '');
  const pubtime = props['pubtime'];
  const pubtimeMs = typeof pubtime === 'string' && RFC3339.test(pubtime) ? Date.parse(pubtime) : Number.NaN;
  if (!Number.isFinite(pubtimeMs)) return fail('"properties.pubtime" is not an RFC 3339 time');
  const links = doc['links'];
  if (!Array.isArray(links)) return fail('no "links"');
  const usable = links.filter((l): l is Record<string, unknown> => isObject(l) && DATA_RELS.includes(String(l['rel'])));
  if (usable.length === 0) {
    const rels = links.map((l) => (isObject(l) ? String(l['rel']) : '?')).join(', ');
    return fail(`no link with rel "canonical", "update" or "deletion" (rels: ${rels || 'none'})`);
  }
  // A deletion says the data is gone, whatever else the message links.
  const link = usable.find((l) => l['rel'] === 'deletion') ?? (usable[0] as Record<string, unknown>);
  const checked = checkHref(link['href'], link['rel'] !== 'deletion');
  if (typeof checked === 'string') return fail(checked);
  const url = checked;
  // What a deletion needs is which data: its length and integrity, if given, describe what was removed.
  if (link['rel'] === 'deletion')
    return { ok: true, notification: { id, dataId, path, pubtimeMs, href: url.href, rel: 'deletion' } };
  const length = link['length'];
  if (length !== undefined && !(typeof length === 'number' && Number.isSafeInteger(length) && length >= 0))
    return fail('link "length" is not a non-negative integer');
  let integrity: Integrity | undefined;
  const integ = props['integrity'];
  if (integ !== undefined && integ !== null) {
    if (!isObject(integ)) return fail('"properties.integrity" is not an object');
    const method = String(integ['method'] ?? '').toLowerCase();
    const bytes = DIGEST_BYTES[method];
    if (bytes === undefined) return fail(`integrity method "${String(integ['method'])}" is not supported`);
    const value = integ['value'];
    const digest = typeof value === 'string' ? decodeDigest(value, bytes) : undefined;
    if (!digest) return fail(`integrity value is not a ${method} digest in base64 (or hex)`);
    integrity = { method, digest };
  }
  return {
    ok: true,
    notification: {
      id,
      dataId,
      path,
      pubtimeMs,
      href: url.href,
      rel: link['rel'] as Notification['rel'],
      ...(length !== undefined && { length: length as number }),
      ...(integrity && { integrity }),
    },
  };
}
