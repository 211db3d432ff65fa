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
    [`2026/${'x'.repeat(256)}`, 'longer than 255'],
    [`${'雷'.repeat(86)}/a.bufr`, 'longer than 255'],
  ])('rejects %j', (name, why) => {
    expect(unsafeRemotePathReason(name)).toContain(why);
    expect(() => landingPathFor('/l', 's', name)).toThrow(/refusing to land/);
  });
  it('measures each component in UTF-8 bytes, whatever the path length', () => {
    expect(unsafeRemotePathReason(`${'雷'.repeat(85)}/${'x'.repeat(255)}/${'y'.repeat(200)}`)).toBeUndefined();
    expect(unsafeRemotePathReason(`a/${'é'.repeat(128)}`)).toContain('longer than 255');
  });
  it('accepts non-ASCII and spaces', () => {
    expect(unsafeRemotePathReason('données/radar été.bufr')).toBeUndefined();
  });
});
