import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  hostFieldMatches,
  keyTypeOfBlob,
  parseFingerprint,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  sha256Fingerprint,
  verifyKnownHost,
} from '../../src/sources/sftp/host-key.js';

function blob(type: string, body: string): Buffer {
  const t = Buffer.from(type);
  const b = Buffer.from(body);
  const out = Buffer.alloc(8 + t.length + b.length);
  out.writeUInt32BE(t.length, 0);
  t.copy(out, 4);
  out.writeUInt32BE(b.length, 4 + t.length);
  b.copy(out, 8 + t.length);
  return out;
}

const ed = blob('ssh-ed25519', 'key-one-32-bytes-long-xxxxxxxxxx');
const ed2 = blob('ssh-ed25519', 'key-two-32-bytes-long-xxxxxxxxxx');
const rsa = blob('ssh-rsa', 'rsa-key');
const line = (hosts: string, key: Buffer) => `${hosts} ${keyTypeOfBlob(key)} ${key.toString('base64')}`;

describe('host key fingerprints', () => {
  it('prints and parses SHA256 fingerprints as OpenSSH does, and hex', () => {
    const fp = sha256Fingerprint(ed);
    const digest = createHash('sha256').update(ed).digest();
    expect(fp).toBe(`SHA256:${digest.toString('base64').replace(/=+$/, '')}`);
    expect(parseFingerprint(fp)?.equals(digest)).toBe(true);
    expect(parseFingerprint(`${fp}=`)?.equals(digest)).toBe(true);
    expect(parseFingerprint(digest.toString('hex'))?.equals(digest)).toBe(true);
    expect(parseFingerprint(digest.toString('hex').match(/../g)!.join(':'))?.equals(digest)).toBe(true);
    expect(parseFingerprint('MD5:aa:bb')).toBeUndefined();
    expect(parseFingerprint('SHA256:short')).toBeUndefined();
  });
});

describe('known_hosts', () => {
  it('matches plain, bracketed-port, wildcard and negated host fields', () => {
    expect(hostFieldMatches('radar.example.org,10.0.0.1', 'radar.example.org', 22)).toBe(true);
    expect(hostFieldMatches('radar.example.org', 'radar.example.org', 2222)).toBe(false);
    expect(hostFieldMatches('[radar.example.org]:2222', 'radar.example.org', 2222)).toBe(true);
    expect(hostFieldMatches('*.example.org,!bad.example.org', 'radar.example.org', 22)).toBe(true);
    expect(hostFieldMatches('*.example.org,!bad.example.org', 'bad.example.org', 22)).toBe(false);
  });

  it('matches hashed entries', () => {
    const salt = Buffer.from('0123456789abcdefghij');
    const hash = createHmac('sha1', salt).update('[127.0.0.1]:2222').digest('base64');
    const field = `|1|${salt.toString('base64')}|${hash}`;
    expect(hostFieldMatches(field, '127.0.0.1', 2222)).toBe(true);
    expect(hostFieldMatches(field, '127.0.0.1', 22)).toBe(false);
  });

  it('gives match, mismatch, unknown and revoked verdicts', () => {
    const entries = parseKnownHosts(
      [
        '# comment',
        '',
        line('radar.example.org', ed),
        line('other.example.org', ed2),
        `@revoked ${line('*', ed2)}`,
        '@cert-authority *.example.org ssh-ed25519 AAAA',
        'garbage line',
      ].join('\n'),
    );
    expect(entries).toHaveLength(3);
    expect(verifyKnownHost(entries, 'radar.example.org', 22, ed)).toBe('match');
    expect(verifyKnownHost(entries, 'radar.example.org', 22, rsa)).toBe('mismatch');
    expect(verifyKnownHost(entries, 'nowhere.example.org', 22, ed)).toBe('unknown');
    expect(verifyKnownHost(entries, 'other.example.org', 22, ed2)).toBe('revoked');
  });

  it('prefers the host key algorithms known_hosts has', () => {
    const entries = parseKnownHosts([line('h', rsa), line('h', ed)].join('\n'));
    expect(preferredHostKeyAlgorithms(entries)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
  });
});
