import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { SOURCE_KINDS, SOURCE_SCHEMES, sourceKindOf, sourceKindsTable } from '../../src/sources/index.js';
import { COMMON_SOURCE_OPTIONS } from '../../src/sources/kind.js';

const DOC = new URL('../../docs/sources.md', import.meta.url);

function issuesOf(source: Record<string, unknown>): string[] {
  try {
    buildConfig({ landing: '/tmp/l', ledger: '/tmp/l.db', sources: [{ name: 'a', ...source }] }, '/', {});
  } catch (err) {
    return [...((err as { issues?: string[] }).issues ?? [String(err)])];
  }
  return [];
}

describe('source kinds', () => {
  it('docs/sources.md carries the table built from the descriptors', () => {
    expect(readFileSync(DOC, 'utf8')).toContain(sourceKindsTable());
  });

  it('each scheme has exactly one kind, and a kind option is never also a common one', () => {
    expect(new Set(SOURCE_SCHEMES).size).toBe(SOURCE_KINDS.flatMap((k) => k.schemes).length);
    for (const scheme of SOURCE_SCHEMES) expect(sourceKindOf(scheme)?.schemes).toContain(scheme);
    for (const k of SOURCE_KINDS)
      for (const key of Object.keys(k.options)) expect(Object.keys(COMMON_SOURCE_OPTIONS)).not.toContain(key);
  });

  it('defaults come from the kind: port, user, root path, TLS mode', () => {
    const c = buildConfig(
      {
        landing: '/tmp/l',
        ledger: '/tmp/l.db',
        sources: [
          { name: 'f', url: 'ftps://h/out', tls: 'implicit' },
          { name: 's', url: 'sftp://u@h/in', hostKey: 'SHA256:x' },
          { name: 'w', url: 'https://h/' },
          { name: 'l', url: 'file:///srv/in' },
        ],
      },
      '/',
      {},
    );
    expect(c.sources.map((s) => [s.port, s.user, s.rootPath, s.tls.mode])).toEqual([
      [990, 'anonymous', '/out', 'implicit'],
      [22, 'u', '/in', 'none'],
      [443, '', '/', 'none'],
      [0, '', '/srv/in', 'none'],
    ]);
  });

  it("refuses another kind's option with one line naming the kind that takes it", () => {
    expect(issuesOf({ url: 'ftp://h/', hostKey: 'SHA256:x', region: 'eu-west-1' })).toEqual([
      'sources[0].hostKey: applies to sftp sources only; remove it',
      'sources[0].region: applies to s3 sources only; remove it',
    ]);
    expect(issuesOf({ url: 'sftp://u@h/', tls: 'explicit' })).toEqual([
      'sources[0].tls: applies to ftp/ftps sources only; remove it',
    ]);
    expect(issuesOf({ url: 'https://h/', after: 'delete' })).toEqual([
      'sources[0].after: an http(s) index cannot delete or move files; remove it (s3 sources can delete)',
    ]);
  });
});
