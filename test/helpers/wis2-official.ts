/**
 * The official WMO WIS2 material, read in place (never copied into the project): the bundled
 * WNM JSON schema, its examples, the abstract test suite of the core conformance class and the
 * WIS2 Topic Hierarchy. `POLLER_WIS2_OFFICIAL` points at the directory (default: `shared/wis2`
 * beside the repository). Absent: tests skip with a visible notice; with CI=true they fail.
 *
 * `officialProblems` is the verdict of the standard on one message: the authoritative schema
 * (ATS /conf/core/validation) plus the abstract tests a program can run (message size,
 * identifier, conformance, geometry, pubtime, data_id, temporal, links), written from the ATS
 * text independently of poller's own rules, so that the two can be compared.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { REPO_ROOT } from './engine-env.js';

export const WIS2_OFFICIAL_DIR = process.env['POLLER_WIS2_OFFICIAL'] ?? path.resolve(REPO_ROOT, '..', 'shared', 'wis2');
const SCHEMA_FILE = path.join(WIS2_OFFICIAL_DIR, 'wis2-notification-message-bundled.json');

/** True when the material is there; otherwise prints a notice (or throws when CI=true). */
export function officialAvailable(): boolean {
  if (existsSync(SCHEMA_FILE)) return true;
  const what = `official WIS2 material not found at ${WIS2_OFFICIAL_DIR}`;
  if (process.env['CI'] === 'true') throw new Error(`${what}; set POLLER_WIS2_OFFICIAL`);
  console.warn(`[wis2] ${what}: skipping the conformance tests (set POLLER_WIS2_OFFICIAL to run them)`);
  return false;
}

export interface OfficialSchema {
  readonly id: string;
  readonly schema: Record<string, unknown>;
  readonly validate: ValidateFunction;
}

let cached: OfficialSchema | undefined;
export function officialSchema(): OfficialSchema {
  if (cached) return cached;
  const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Record<string, unknown>;
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  cached = { id: String(schema['$id']), schema, validate: ajv.compile(schema) };
  return cached;
}

/** The examples directory's messages, and the schema's own `example` (a legacy `version` message). */
export function officialExamples(): Array<{ name: string; message: Record<string, unknown> }> {
  const dir = path.join(WIS2_OFFICIAL_DIR, 'examples');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const out = files.map((f) => ({
    name: f,
    message: JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>,
  }));
  out.push({ name: 'schema example', message: officialSchema().schema['example'] as Record<string, unknown> });
  return out;
}

/** The commit of the WNM repository the material was taken from (PROVENANCE.md). */
export function officialCommits(): { wnm: string; topics: string } {
  const text = readFileSync(path.join(WIS2_OFFICIAL_DIR, 'PROVENANCE.md'), 'utf8');
  const commit = (repo: string) => new RegExp(`${repo} \\| ([0-9a-f]{40})`).exec(text)?.[1] ?? 'unknown';
  return { wnm: commit('wis2-notification-message'), topics: commit('wis2-topic-hierarchy') };
}

export const TOPIC_HIERARCHY_DIR = path.join(WIS2_OFFICIAL_DIR, 'wis2-topic-hierarchy');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** RFC 3339 date-time in UTC (`Z`, or an offset of zero). */
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]00:00)$/i;
const LINK_SCHEMES = new Set(['http:', 'https:', 'ftp:', 'sftp:']);

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** The abstract tests of the core class that a program can run, one line per failed step. */
export function atsProblems(bytes: Buffer, msg: Record<string, unknown>): string[] {
  const p: string[] = [];
  if (bytes.length > 8192) p.push(`message_size: ${bytes.length} bytes > 8192`);
  if (typeof msg['id'] !== 'string' || !UUID.test(msg['id'])) p.push('identifier: id is not a UUID');
  const conforms = msg['conformsTo'];
  const version = msg['version'];
  if (conforms !== undefined) {
    if (!Array.isArray(conforms) || !conforms.includes('http://wis.wmo.int/spec/wnm/1/conf/core'))
      p.push('conformance: conformsTo does not include the core class');
  } else if (version !== 'v04') p.push('conformance: neither conformsTo nor version v04');
  if (!('geometry' in msg)) p.push('geometry: missing');
  const geometry = obj(msg['geometry']);
  if (geometry) {
    const points: unknown[] =
      geometry['type'] === 'Point'
        ? [geometry['coordinates']]
        : ((geometry['coordinates'] as unknown[][])?.flat() ?? []);
    for (const c of points) {
      const [lon, lat] = Array.isArray(c) ? (c as unknown[]) : [];
      if (typeof lon !== 'number' || typeof lat !== 'number') p.push('geometry: coordinates are not numbers');
      else if (lon < -180 || lon > 180 || lat < -90 || lat > 90) p.push('geometry: coordinates out of range');
    }
  }
  const props = obj(msg['properties']) ?? {};
  if (typeof props['pubtime'] !== 'string' || !RFC3339_UTC.test(props['pubtime']))
    p.push('pubtime: not RFC 3339 in UTC');
  if (!('data_id' in props)) p.push('data_id: missing');
  const times = ['datetime', 'start_datetime', 'end_datetime'].filter((k) => props[k] !== undefined);
  if (!('datetime' in props) && !('start_datetime' in props && 'end_datetime' in props))
    p.push('temporal: no datetime nor start_datetime + end_datetime');
  for (const k of times) {
    const v = props[k];
    if (v !== null && (typeof v !== 'string' || !RFC3339_UTC.test(v))) p.push(`temporal: ${k} not RFC 3339 in UTC`);
  }
  const links = msg['links'];
  if (!Array.isArray(links) || links.length === 0) p.push('links: no links array with a link');
  else {
    for (const l of links) {
      const href = obj(l)?.['href'];
      let scheme = '';
      try {
        scheme = new URL(String(href)).protocol;
      } catch {
        // not a URL: reported below
      }
      if (!LINK_SCHEMES.has(scheme)) p.push(`links: href ${JSON.stringify(href)} is not http, https, ftp or sftp`);
    }
    const data = links.filter((l) => ['canonical', 'update', 'deletion'].includes(String(obj(l)?.['rel'])));
    if (data.length !== 1 || typeof obj(data[0])?.['href'] !== 'string')
      p.push(`links: ${data.length} links with rel canonical, update or deletion (need exactly one, with href)`);
  }
  return p;
}

/** The standard's verdict on one message as sent (its bytes): schema errors and abstract test failures. */
export function officialProblems(body: Buffer | string): string[] {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const msg = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  const { validate } = officialSchema();
  const problems = validate(msg) ? [] : (validate.errors ?? []).map((e) => `schema: ${e.instancePath} ${e.message}`);
  return [...problems, ...atsProblems(bytes, msg)];
}
