import { describe, expect, it } from 'vitest';
import { subjectFilter } from '../../src/events/sinks/nats-sink.js';
import { renderTopic } from '../../src/events/topic.js';
import { buildWnm, datetimeFromPath, encodeWnm } from '../../src/events/wnm.js';
import { wnmProblems } from '../helpers/wnm-schema.js';

const base = {
  id: '31e9d66a-cd83-4174-9429-b932f1abe1be',
  centreId: 'xx-test',
  source: 'radar',
  sourceUrl: 'ftp://radar.example.org/out',
  atMs: Date.UTC(2026, 10, 23, 5, 16),
  wnm: { geometry: { type: 'Point' as const, coordinates: [2.35, 48.85] } },
  fact: { path: 'vol/T_PAGA_C_LFPW_20261123051500.bufr', sizeBytes: 1234, mtimeMs: 0, sha512: 'aGFzaA==' },
};

describe('WIS2 notification messages', () => {
  it('conform to the schema: data_id, pubtime, integrity, one canonical link with type and length', () => {
    const m = buildWnm({
      ...base,
      wnm: {
        ...base.wnm,
        metadataId: 'urn:wmo:md:xx-test:radar.volumes',
        datetimePattern: /(?<Y>\d{4})(?<m>\d{2})(?<d>\d{2})(?<H>\d{2})(?<M>\d{2})(?<S>\d{2})\.bufr$/,
      },
    });
    const body = encodeWnm(m);
    expect(body).toBeDefined();
    expect(wnmProblems(body as Buffer)).toEqual([]);
    expect(m.properties).toMatchObject({
      data_id: 'xx-test/radar/vol/T_PAGA_C_LFPW_20261123051500.bufr',
      pubtime: '2026-11-23T05:16:00Z',
      datetime: '2026-11-23T05:15:00Z',
      integrity: { method: 'sha512', value: 'aGFzaA==' },
      metadata_id: 'urn:wmo:md:xx-test:radar.volumes',
    });
    expect(m.links).toEqual([
      {
        href: 'ftp://radar.example.org/out/vol/T_PAGA_C_LFPW_20261123051500.bufr',
        rel: 'canonical',
        type: 'application/bufr',
        length: 1234,
      },
    ]);
  });

  it('a changed version is an update link; a public base URL makes the href; no pattern, null datetime', () => {
    const m = buildWnm({
      ...base,
      wnm: undefined,
      publicBaseUrl: 'https://data.example.org/x',
      fact: { ...base.fact, update: true },
    });
    expect(m.links[0]).toMatchObject({
      rel: 'update',
      href: 'https://data.example.org/x/radar/vol/T_PAGA_C_LFPW_20261123051500.bufr',
    });
    expect(m.geometry).toBeNull();
    expect(m.properties.datetime).toBeNull();
    // No metadata_id configured: none is made up (it is the operator's WCMP2 record id).
    expect(m.properties).not.toHaveProperty('metadata_id');
    expect(wnmProblems(encodeWnm(m) as Buffer)).toEqual([]);
  });

  it('inline content only up to 4096 encoded bytes; over 8192 bytes a message is not sent', () => {
    const small = buildWnm({ ...base, inlineBase64: 'A'.repeat(4096) });
    expect(small.properties.content?.value).toHaveLength(4096);
    expect(wnmProblems(encodeWnm(small) as Buffer)).toEqual([]);
    expect(buildWnm({ ...base, inlineBase64: 'A'.repeat(4100) }).properties.content).toBeUndefined();
    const huge = buildWnm({ ...base, fact: { ...base.fact, path: `${'d/'.repeat(3000)}x.bufr` } });
    expect(encodeWnm(huge)).toBeUndefined();
    expect(datetimeFromPath('nothing.h5', /(?<Y>\d{4})/)).toBeNull();
  });

  it('topics: WIS2 levels with slashes, dots for NATS and AMQP, and stream subject filters', () => {
    const v = { centreId: 'xx-test', source: 'radar.n', kind: 'failed', path: 'a/b.c/f.h5' };
    expect(renderTopic('v03/post/{dirs}', v, 'dot')).toBe('v03.post.radar_n.a.b_c');
    expect(renderTopic('poller/{centreId}/{source}/{kind}', v, 'slash')).toBe('poller/xx-test/radar.n/failed');
    expect(subjectFilter('poller/{centreId}/{source}/{kind}')).toBe('poller.*.*.*');
    expect(subjectFilter('v03/post/{dirs}')).toBe('v03.post.>');
  });
});
