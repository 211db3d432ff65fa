import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { PluginFile } from '../../src/plugins/api.js';
import { parseUrl, remoteDirFor } from './index.js';
import { fingerprintOf, normaliseFingerprint } from './targets.js';

const file: PluginFile = {
  localPath: '/var/lib/poller/landing/radar-north/2026/11/23/T_PAGB41.bufr',
  remotePath: '2026/11/23/T_PAGB41.bufr',
  source: 'radar-north',
  sizeBytes: 10,
  mtimeMs: Date.parse('2026-11-23T05:15:00Z'),
  attempt: 1,
};

describe('remoteDirFor', () => {
  it('keeps the source tree under the base by default', () => {
    expect(remoteDirFor(file, '{remoteDir}', '/incoming')).toBe('/incoming/2026/11/23');
    expect(remoteDirFor({ ...file, remotePath: 'top.bufr' }, '{remoteDir}', '/incoming')).toBe('/incoming');
  });

  it('fills source and UTC date placeholders', () => {
    expect(remoteDirFor(file, '{source}/{YYYY}/{MM}/{DD}/{HH}', '/')).toBe('/radar-north/2026/11/23/05');
  });

  it('refuses a template that climbs out of the base', () => {
    expect(() => remoteDirFor(file, '../{source}', '/incoming')).toThrow(/leaves the base directory/);
  });
});

describe('parseUrl', () => {
  it('splits a destination URL and decodes it', () => {
    expect(parseUrl('sftp://relay%40eu@[::1]:2222/data/in%20box')).toEqual({
      protocol: 'sftp',
      host: '::1',
      port: 2222,
      user: 'relay@eu',
      basePath: '/data/in box',
    });
    expect(parseUrl('ftp://relay@host')).toMatchObject({ protocol: 'ftp', basePath: '/' });
  });
});

describe('host key fingerprints', () => {
  it('accepts the OpenSSH form and hex for the same key', () => {
    const key = Buffer.from('ssh-ed25519 fake key blob');
    const digest = createHash('sha256').update(key).digest();
    const openssh = `SHA256:${digest.toString('base64').replace(/=+$/, '')}`;
    const hex = [...digest].map((b) => b.toString(16).padStart(2, '0')).join(':');
    expect(normaliseFingerprint(openssh)).toBe(fingerprintOf(key));
    expect(normaliseFingerprint(hex)).toBe(fingerprintOf(key));
  });
});
