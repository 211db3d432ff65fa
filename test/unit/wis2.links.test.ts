/**
 * No unfetchable links: a WNM sink whose hrefs a subscriber could not follow (file://, s3://, a
 * server that needs poller's login) is refused at start, one line naming publicBaseUrl; one
 * message id per message body across sinks.
 */
import { describe, expect, it } from 'vitest';
import { buildConfig, type SinkConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { formatEvent, isUnsendable } from '../../src/events/payload.js';
import { assertWis2Config } from '../../src/events/wis2-config.js';
import type { OutboxEvent } from '../../src/ledger/ledger.js';

function issuesOf(doc: Record<string, unknown>): string[] {
  try {
    assertWis2Config(buildConfig({ landing: './l', ledger: './l.db', ...doc }, '/etc/poller', { PW: 'secret-pw' }));
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

const sink = (over: Record<string, unknown> = {}) => ({
  events: { centreId: 'xx-test', sinks: [{ name: 'gb', type: 'mqtt', url: 'mqtt://127.0.0.1:1883', ...over }] },
});

describe('WNM links a subscriber can fetch', () => {
  it('a local, an s3 or a logged-in ftp source without publicBaseUrl is refused, one line naming publicBaseUrl', () => {
    for (const url of ['file:///srv/in', 's3://bucket/radar', 'ftp://ingest@radar.example.org/out', 'sftp://u@h/x']) {
      const issues = issuesOf({ sources: [{ name: 'radar', url, password: '${PW}' }], ...sink() });
      expect(issues, url).toHaveLength(1);
      expect(issues[0]).toMatch(
        /^events\.sinks\[0\]\.publicBaseUrl: sink "gb" would announce links like .* \(source "radar"\)/,
      );
      expect(issues[0]).not.toContain('secret-pw');
    }
  });

  it('a publicBaseUrl that is not fetchable is refused; an https one, or an anonymous http source, is fine', () => {
    const src = { sources: [{ name: 'radar', url: 'file:///srv/in' }] };
    expect(issuesOf({ ...src, ...sink({ publicBaseUrl: 'file:///srv/landing' }) })).toEqual([
      'events.sinks[0].publicBaseUrl: scheme "file" is not one a subscriber can fetch; use https (or http, ftp, sftp)',
    ]);
    expect(issuesOf({ ...src, ...sink({ publicBaseUrl: 'https://u:p@data.example.org/x' }) })[0]).toMatch(
      /carries credentials/,
    );
    expect(issuesOf({ ...src, ...sink({ publicBaseUrl: 'https://data.example.org/poller' }) })).toEqual([]);
    expect(issuesOf({ sources: [{ name: 'w', url: 'https://data.example.org/pub/' }], ...sink() })).toEqual([]);
    // Lifecycle-only and sr3 sinks carry no WNM links.
    expect(issuesOf({ ...src, ...sink({ kinds: ['failed', 'quarantined'] }) })).toEqual([]);
  });
});

describe('one message id per message body', () => {
  const event: OutboxEvent = {
    seq: 1,
    id: '0b0c3f0e-5c1e-4d5e-9a43-2f1f6b3c8e11',
    sink: 'a',
    kind: 'fetched',
    source: 'radar',
    fileId: 1,
    atMs: Date.UTC(2026, 10, 23, 12),
    fact: { path: 'x/f.bufr', sizeBytes: 3, mtimeMs: 0, sha512: 'aGFzaA==' },
  };
  const sinkOf = (name: string, publicBaseUrl?: string) =>
    ({
      name,
      type: 'mqtt',
      kinds: ['fetched'],
      sources: null,
      format: 'wnm',
      inlineContent: false,
      ...(publicBaseUrl && { publicBaseUrl }),
    }) as unknown as SinkConfig;
  const idOf = async (s: SinkConfig) => {
    const m = await formatEvent(event, { centreId: 'xx-test', sink: s, sources: new Map() });
    if (isUnsendable(m)) throw new Error(m.reason);
    const body = JSON.parse(m.body.toString()) as { id: string };
    expect(body.id).toBe(m.id);
    return m.id;
  };

  it('sinks whose bodies differ send different ids; the same body keeps one id, re-sent or not', async () => {
    const a = await idOf(sinkOf('a', 'https://one.example.org/x'));
    const b = await idOf(sinkOf('b', 'https://two.example.org/y'));
    const c = await idOf(sinkOf('c', 'https://one.example.org/x'));
    expect(a).not.toBe(b);
    expect(a).toBe(c);
    expect(await idOf(sinkOf('a', 'https://one.example.org/x'))).toBe(a);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
