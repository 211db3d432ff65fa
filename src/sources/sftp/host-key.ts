import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Host key checks for SFTP, as OpenSSH does them: a pinned SHA-256 fingerprint, or a
 * known_hosts file (plain, `[host]:port` and hashed `|1|salt|hash` entries, `@revoked`).
 * Pure functions: the source feeds them the key blob ssh2 hands to `hostVerifier`.
 */

/** What a host key check concluded; `unknown` means the host has no entry at all. */
export type HostKeyVerdict = 'match' | 'mismatch' | 'unknown' | 'revoked';

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  readonly marker: 'revoked' | undefined;
  /** Comma-separated patterns as written (`host`, `[host]:2222`, `*.example.org`, `!bad`), or a hashed entry. */
  readonly hosts: string;
  readonly keyType: string;
  readonly keyBlob: Buffer;
}

/** `SHA256:<base64 without padding>` of a host key blob, as `ssh-keygen -lf` prints it. */
export function sha256Fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Parses a configured fingerprint: `SHA256:base64` (padding optional) or 64 hex digits (colons
 * optional). Returns the 32 digest bytes, or undefined when the text is neither.
 */
export function parseFingerprint(text: string): Buffer | undefined {
  const trimmed = text.trim();
  const hex = trimmed.replace(/:/g, '');
  if (/^[0-9a-fA-F]{64}$/.test(hex)) return Buffer.from(hex, 'hex');
  const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(trimmed);
  if (m?.[1] !== undefined) {
    const digest = Buffer.from(m[1], 'base64');
    if (digest.length === 32) return digest;
  }
  return undefined;
}

/** Compares a host key blob with a pinned fingerprint (parsed by `parseFingerprint`). */
export function matchesFingerprint(keyBlob: Buffer, digest: Buffer): boolean {
  const actual = createHash('sha256').update(keyBlob).digest();
  return actual.length === digest.length && timingSafeEqual(actual, digest);
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, ...). */
export function keyTypeOfBlob(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const len = keyBlob.readUInt32BE(0);
  if (len === 0 || 4 + len > keyBlob.length || len > 64) return undefined;
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

/** Parses known_hosts text; comments, blank lines, `@cert-authority` and malformed lines are skipped. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      // Certificate authorities sign host certificates, which this client does not check.
      if (fields[0] !== '@revoked') continue;
      marker = 'revoked';
      fields.shift();
    }
    const [hosts, keyType, keyBase64] = fields;
    if (hosts === undefined || keyType === undefined || keyBase64 === undefined) continue;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(keyBase64)) continue;
    const keyBlob = Buffer.from(keyBase64, 'base64');
    if (keyTypeOfBlob(keyBlob) !== keyType) continue;
    entries.push({ marker, hosts, keyType, keyBlob });
  }
  return entries;
}

/** The name OpenSSH looks up for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function matchesHashed(pattern: string, name: string): boolean {
  const parts = pattern.split('|');
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  if (parts.length !== 4 || parts[1] !== '1' || parts[2] === undefined || parts[3] === undefined) return false;
  const salt = Buffer.from(parts[2], 'base64');
  const expected = Buffer.from(parts[3], 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function wildcardToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** Does a host field (comma list with wildcards and `!` negation, or one hashed name) name this host? */
export function hostFieldMatches(field: string, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (field.startsWith('|')) return matchesHashed(field, name);
  let matched = false;
  for (const pattern of field.split(',')) {
    const negated = pattern.startsWith('!');
    const body = negated ? pattern.slice(1) : pattern;
    if (body === '') continue;
    if (wildcardToRegExp(body).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** The entries of a known_hosts file that apply to host:port. */
export function entriesForHost(entries: readonly KnownHostEntry[], host: string, port: number): KnownHostEntry[] {
  return entries.filter((e) => hostFieldMatches(e.hosts, host, port));
}

/** Checks a presented host key against the known_hosts entries for its host. */
export function verifyKnownHost(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  keyBlob: Buffer,
): HostKeyVerdict {
  const forHost = entriesForHost(entries, host, port);
  if (forHost.some((e) => e.marker === 'revoked' && e.keyBlob.equals(keyBlob))) return 'revoked';
  const plain = forHost.filter((e) => e.marker === undefined);
  if (plain.length === 0) return 'unknown';
  return plain.some((e) => e.keyBlob.equals(keyBlob)) ? 'match' : 'mismatch';
}

/**
 * Host key algorithms to prefer so the server presents a key type known_hosts has, as OpenSSH
 * does: without this, a host listed only with its RSA key fails when ed25519 is negotiated.
 */
export function preferredHostKeyAlgorithms(entries: readonly KnownHostEntry[]): string[] {
  const algorithms: string[] = [];
  for (const e of entries) {
    if (e.marker !== undefined) continue;
    const names = e.keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [e.keyType];
    for (const n of names) if (!algorithms.includes(n)) algorithms.push(n);
  }
  return algorithms;
}
