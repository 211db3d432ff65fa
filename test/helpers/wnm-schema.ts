/**
 * Validates WIS2 notification messages against the schema kept in the repo, plus the
 * requirements JSON Schema cannot say (message size, one data link, link schemes, UTC times).
 * Link `type`/`length` and `metadata_id` are recommendations of the standard, not requirements:
 * accepted when absent, as the official schema and examples do.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { REPO_ROOT } from './engine-env.js';

const schema = JSON.parse(
  readFileSync(path.join(REPO_ROOT, 'src', 'events', 'schema', 'wis2-notification-message.schema.json'), 'utf8'),
) as object;
const ajv = new Ajv2020({ allErrors: true, strict: false });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
const validate = ajv.compile(schema);

/** REQ links D. */
const SCHEMES = new Set(['http:', 'https:', 'ftp:', 'sftp:']);
/** REQ pubtime C, REQ temporal C: RFC 3339 in UTC. */
const UTC_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]00:00)$/i;

interface Link {
  rel?: unknown;
  href?: unknown;
}

function schemeOf(href: unknown): string {
  try {
    return new URL(String(href)).protocol;
  } catch {
    return '';
  }
}

/** Problems of one message as received (its bytes); empty when it conforms. */
export function wnmProblems(body: Buffer | string): string[] {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const problems: string[] = [];
  if (bytes.length > 8192) problems.push(`message is ${bytes.length} bytes (> 8192)`);
  const msg = JSON.parse(bytes.toString('utf8')) as {
    links?: Link[];
    properties?: Record<string, unknown>;
    geometry?: { type?: string; coordinates?: unknown };
  };
  if (!validate(msg)) problems.push(...(validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));
  const links = Array.isArray(msg.links) ? msg.links : [];
  // REQ links E/F/G/I: exactly one of canonical, update or deletion.
  const data = links.filter((l) => l.rel === 'canonical' || l.rel === 'update' || l.rel === 'deletion');
  if (data.length !== 1) problems.push(`${data.length} canonical/update/deletion links (need exactly one)`);
  for (const l of links)
    if (!SCHEMES.has(schemeOf(l.href)))
      problems.push(`link href ${JSON.stringify(l.href)} is not http(s), ftp or sftp`);
  const props = msg.properties ?? {};
  for (const k of ['pubtime', 'datetime', 'start_datetime', 'end_datetime']) {
    const v = props[k];
    if (typeof v === 'string' && !UTC_TIME.test(v)) problems.push(`properties.${k} is not in UTC`);
  }
  // REQ geometry A: WGS 84 longitude and latitude.
  const g = msg.geometry;
  const coords =
    g?.type === 'Point' ? [g.coordinates] : g?.type === 'Polygon' ? (g.coordinates as unknown[][]).flat() : [];
  for (const c of coords as Array<[number, number]>)
    if (Math.abs(c[0]) > 180 || Math.abs(c[1]) > 90) problems.push('geometry coordinates out of range');
  return problems;
}
