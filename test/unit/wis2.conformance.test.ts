/**
 * poller's WNM schema and rules against the official material: every official example, and
 * variations of them on each requirement, get the same verdict from poller's schema + rules as
 * from the official bundled schema + the abstract test suite. Skipped with a notice when the
 * official material is absent (fails with CI=true).
 */
import { describe, expect, it } from 'vitest';
import { buildWnm, encodeWnm } from '../../src/events/wnm.js';
import { officialAvailable, officialExamples, officialProblems, officialSchema } from '../helpers/wis2-official.js';
import { wnmProblems } from '../helpers/wnm-schema.js';

const available = officialAvailable();

type Msg = Record<string, unknown> & { properties: Record<string, unknown>; links: Array<Record<string, unknown>> };

function clone(m: Record<string, unknown>): Msg {
  return structuredClone(m) as Msg;
}

/** Variations of a core example, one requirement each; `ok` is what the standard says. */
function variations(core: Msg): Array<{ name: string; ok: boolean; message: Msg }> {
  const v = (name: string, ok: boolean, edit: (m: Msg) => void) => {
    const m = clone(core);
    edit(m);
    return { name, ok, message: m };
  };
  return [
    v('conformsTo and the legacy version together', false, (m) => {
      m['version'] = 'v04';
    }),
    v('legacy version instead of conformsTo', true, (m) => {
      delete m['conformsTo'];
      m['version'] = 'v04';
    }),
    v('neither conformsTo nor version', false, (m) => {
      delete m['conformsTo'];
    }),
    v('conformsTo without the core class', false, (m) => {
      m['conformsTo'] = ['http://example.org/other'];
    }),
    v('no metadata_id (a recommendation)', true, (m) => {
      delete m.properties['metadata_id'];
    }),
    v('link without type and length (recommendations)', true, (m) => {
      delete m.links[0]?.['type'];
      delete m.links[0]?.['length'];
    }),
    v('a deletion link', true, (m) => {
      m.links = [{ href: 'https://example.org/x.bufr', rel: 'deletion' }];
    }),
    v('an update link', true, (m) => {
      m.links = [{ href: 'https://example.org/x.bufr', rel: 'update', type: 'application/bufr', length: 3 }];
    }),
    v('an sftp link', true, (m) => {
      m.links = [{ href: 'sftp://example.org/x.bufr', rel: 'canonical' }];
    }),
    v('an ftp link with a query string', true, (m) => {
      m.links = [{ href: 'ftp://example.org/x.bufr?type=i', rel: 'canonical' }];
    }),
    v('a file:// link', false, (m) => {
      m.links = [{ href: 'file:///var/lib/poller/x.bufr', rel: 'canonical' }];
    }),
    v('an s3:// item link beside the canonical one', false, (m) => {
      m.links.push({ href: 's3://bucket/x', rel: 'item' });
    }),
    v('canonical and update together', false, (m) => {
      m.links.push({ href: 'https://example.org/y', rel: 'update' });
    }),
    v('two canonical links', false, (m) => {
      m.links.push({ href: 'https://example.org/y', rel: 'canonical' });
    }),
    v('only an item link', false, (m) => {
      m.links = [{ href: 'https://example.org/y', rel: 'item' }];
    }),
    v('a link without href', false, (m) => {
      m.links = [{ rel: 'canonical', type: 'application/bufr' }];
    }),
    v('no links', false, (m) => {
      m.links = [];
    }),
    v('id not a UUID', false, (m) => {
      m['id'] = 'not-a-uuid';
    }),
    v('no data_id', false, (m) => {
      delete m.properties['data_id'];
    }),
    v('pubtime with a +02:00 offset', false, (m) => {
      m.properties['pubtime'] = '2024-01-18T14:05:02+02:00';
    }),
    v('pubtime not a time', false, (m) => {
      m.properties['pubtime'] = 'yesterday';
    }),
    v('no temporal description', false, (m) => {
      delete m.properties['datetime'];
    }),
    v('datetime null (cannot be derived)', true, (m) => {
      m.properties['datetime'] = null;
    }),
    v('datetime and start/end together', false, (m) => {
      m.properties['start_datetime'] = '2024-01-18T11:00:00Z';
      m.properties['end_datetime'] = '2024-01-18T12:00:00Z';
    }),
    v('geometry longitude out of range', false, (m) => {
      m['geometry'] = { type: 'Point', coordinates: [200, 10] };
    }),
    v('geometry a LineString', false, (m) => {
      m['geometry'] = {
        type: 'LineString',
        coordinates: [
          [0, 0],
          [1, 1],
        ],
      };
    }),
    v('integrity method md5', false, (m) => {
      m.properties['integrity'] = { method: 'md5', value: 'AAAA' };
    }),
    v('inline content of 5000 bytes declared', false, (m) => {
      m.properties['content'] = { encoding: 'base64', size: 5000, value: 'AAAA' };
    }),
    v('over 8192 bytes', false, (m) => {
      m.properties['note'] = 'x'.repeat(8200);
    }),
    v('additional properties anywhere (permitted)', true, (m) => {
      m.properties['volume'] = { key: 'k', members: 3 };
      m['extra'] = true;
    }),
    v('global-cache property (a Global Cache re-publication)', true, (m) => {
      m.properties['global-cache'] = 'de-dwd-global-cache';
    }),
  ];
}

describe.skipIf(!available)('WNM conformance: poller schema and rules agree with the official ones', () => {
  it('every official example passes the official schema and the abstract tests, and poller accepts it', () => {
    const examples = officialExamples();
    expect(examples.length).toBeGreaterThanOrEqual(8);
    for (const { name, message } of examples) {
      const body = JSON.stringify(message);
      expect({ name, official: officialProblems(body) }).toEqual({ name, official: [] });
      expect({ name, poller: wnmProblems(body) }).toEqual({ name, poller: [] });
    }
  });

  it('each variation gets the same verdict from poller as from the standard', () => {
    const core = officialExamples().find((e) => e.name === 'eumetsat-msg-seviri-core-notification.json');
    expect(core, 'the core example').toBeDefined();
    const cases = variations(clone(core!.message));
    const table = cases.map(({ name, ok, message }) => {
      const body = JSON.stringify(message);
      const official = officialProblems(body);
      const poller = wnmProblems(body);
      return { name, expected: ok, official: official.length === 0, poller: poller.length === 0, why: official[0] };
    });
    for (const row of table) {
      expect(row.official, `${row.name}: the standard (${row.why ?? 'accepted'})`).toBe(row.expected);
      expect(row.poller, `${row.name}: poller`).toBe(row.expected);
    }
    expect(officialSchema().id).toMatch(/wnm\/1\.\d+\.\d+\//);
  });

  it('messages poller builds (new file, update, inline content, deletion) pass the official schema and tests', () => {
    const base = {
      id: '31e9d66a-cd83-4174-9429-b932f1abe1be',
      centreId: 'xx-test',
      source: 'radar',
      sourceUrl: 'ftp://radar.example.org/out',
      publicBaseUrl: 'https://data.example.org/poller',
      atMs: Date.UTC(2026, 10, 23, 5, 16),
      wnm: { geometry: { type: 'Point' as const, coordinates: [2.35, 48.85] }, metadataId: 'urn:wmo:md:xx-test:radar' },
      fact: { path: 'vol/T_PAGA_C_LFPW_20261123051500.bufr', sizeBytes: 3, mtimeMs: 0, sha512: 'aGFzaA==' },
    };
    const built = {
      file: buildWnm(base),
      update: buildWnm({ ...base, fact: { ...base.fact, update: true } }),
      inline: buildWnm({ ...base, inlineBase64: 'AAAA' }),
      deletion: buildWnm({ ...base, deletion: true }),
    };
    for (const [kind, m] of Object.entries(built)) {
      const body = encodeWnm(m) as Buffer;
      expect({ kind, official: officialProblems(body), poller: wnmProblems(body) }).toEqual({
        kind,
        official: [],
        poller: [],
      });
    }
    expect(built.deletion.links).toEqual([{ href: built.file.links[0]?.href, rel: 'deletion' }]);
  });
});
