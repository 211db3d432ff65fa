import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { landingPathFor, unsafeRemotePathReason } from '../../src/transfer/landing-path.js';

describe('landing paths', () => {
  it('keeps the remote tree under landing/<source>/', () => {
    expect(landingPathFor('/var/lib/poller/landing', 'radar', '2026/11/23/a b.bufr')).toBe(
      path.resolve('/var/lib/poller/landing/radar/2026/11/23/a b.bufr'),
    );
  });
  it.each([
    ['../etc/passwd', 'path component ".."'],
    ['a/../../x', 'path component ".."'],
    ['/etc/passwd', 'absolute path'],
    ['a\\..\\b', 'backslash'],
    ['a\0b', 'NUL'],
    ['a//b', 'empty path component'],
    ['./a', 'path component "."'],
    ['x\ny', 'control characters'],
    [`${'x'.repeat(300)}.bufr`, 'longer than 255'],
  ])('rejects %j', (name, why) => {
    expect(unsafeRemotePathReason(name)).toContain(why);
    expect(() => landingPathFor('/l', 's', name)).toThrow(/refusing to land/);
  });
  it('accepts non-ASCII and spaces', () => {
    expect(unsafeRemotePathReason('données/radar été.bufr')).toBeUndefined();
  });
});
