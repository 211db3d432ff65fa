import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseNotification } from '../../src/sources/wis2/notification.js';

const bytes = Buffer.from('radar volume');
const sha512 = createHash('sha512').update(bytes).digest();

function msg(over: { properties?: Record<string, unknown>; links?: unknown[]; [k: string]: unknown } = {}) {
  const { properties, links, ...rest } = over;
  return Buffer.from(
    JSON.stringify({
      id: '6f0c1f4e-0d4c-4a4f-9d53-7a0d1c2b3e4f',
      type: 'Feature',
      geometry: null,
      properties: {
        data_id: 'xx-test/radar/2026/12/02/vol.bufr',
        pubtime: '2026-12-02T10:00:00.123Z',
        integrity: { method: 'sha512', value: sha512.toString('base64') },
        ...properties,
      },
      links: links ?? [{ href: 'https://data.example.org/radar/vol%20a.bufr', rel: 'canonical', length: 12 }],
      ...rest,
    }),
  );
}

describe('WIS2 notification parsing', () => {
  it('takes data_id, pubtime, the canonical link, its length and the integrity', () => {
    const p = parseNotification(msg());
    expect(p).toEqual({
      ok: true,
      notification: {
        id: '6f0c1f4e-0d4c-4a4f-9d53-7a0d1c2b3e4f',
        dataId: 'xx-test/radar/2026/12/02/vol.bufr',
        path: 'xx-test/radar/2026/12/02/vol.bufr',
        pubtimeMs: Date.parse('2026-12-02T10:00:00.123Z'),
        href: 'https://data.example.org/radar/vol%20a.bufr',
        rel: 'canonical',
        length: 12,
        integrity: { method: 'sha512', digest: sha512 },
      },
    });
  });

  it('accepts an update link, a hex digest, and no integrity at all', () => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    const p = parseNotification(
      msg({
        properties: { integrity: { method: 'SHA256', value: hex } },
        links: [{ href: 'http://h/x.bufr', rel: 'update' }],
      }),
    );
    expect(p).toMatchObject({ ok: true, notification: { rel: 'update', integrity: { method: 'sha256' } } });
    expect(p.ok && p.notification.integrity?.digest.toString('hex')).toBe(hex);
    expect(p.ok && p.notification.length).toBeUndefined();
    expect(parseNotification(msg({ properties: { integrity: undefined } }))).toMatchObject({ ok: true });
  });

  it.each([
    ['not json', Buffer.from('{'), 'not JSON'],
    ['not a Feature', msg({ type: 'FeatureCollection' }), '"type" is not "Feature"'],
    ['no data_id', msg({ properties: { data_id: '' } }), 'no "properties.data_id"'],
    ['a bad pubtime', msg({ properties: { pubtime: 'yesterday' } }), 'pubtime'],
    ['only a describedby link', msg({ links: [{ href: 'http://h/x', rel: 'describedby' }] }), 'rels: describedby'],
    ['a deletion link that is not a URL', msg({ links: [{ href: 'not a url', rel: 'deletion' }] }), 'not a URL'],
    ['an ftp link', msg({ links: [{ href: 'ftp://h/x', rel: 'canonical' }] }), 'not http or https'],
    ['credentials in the link', msg({ links: [{ href: 'http://u:p@h/x', rel: 'canonical' }] }), 'credentials'],
    ['a negative length', msg({ links: [{ href: 'http://h/x', rel: 'canonical', length: -1 }] }), 'length'],
    ['an unknown method', msg({ properties: { integrity: { method: 'md5', value: 'x' } } }), 'not supported'],
    [
      'a digest of the wrong size',
      msg({ properties: { integrity: { method: 'sha512', value: 'AAAA' } } }),
      'not a sha512 digest',
    ],
  ])('refuses %s with a reason', (_what, payload, reason) => {
    const p = parseNotification(payload);
    expect(p.ok).toBe(false);
    expect(p.ok ? '' : p.reason).toContain(reason);
  });

  it('takes a link with a query string: it is sent with the request', () => {
    const p = parseNotification(msg({ links: [{ href: 'https://h/get?id=7&sig=a%2Fb', rel: 'canonical' }] }));
    expect(p.ok).toBe(true);
    if (p.ok) expect(p.notification.href).toBe('https://h/get?id=7&sig=a%2Fb');
  });

  it('takes a deletion link: the data_id and pubtime, whatever else the message links', () => {
    const p = parseNotification(
      msg({
        links: [
          { href: 'sftp://h/x.bufr', rel: 'deletion' },
          { href: 'http://h/x.bufr', rel: 'canonical', type: 'application/bufr', length: 3 },
        ],
      }),
    );
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.notification).toMatchObject({ rel: 'deletion', href: 'sftp://h/x.bufr' });
    expect(p.notification.integrity).toBeUndefined();
  });
});
