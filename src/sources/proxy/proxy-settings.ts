/**
 * Which proxy a connection goes through: a source's own `proxy:` wins; otherwise the
 * environment, read as curl reads it (`<scheme>_proxy`, `ALL_PROXY`, `NO_PROXY`). Pure: the
 * environment is passed in.
 */
import { isIP } from 'node:net';

export type ProxyProtocol = 'http' | 'https' | 'socks5' | 'socks5h';

/** One proxy to dial through. Credentials live here only, never in `describeProxy`. */
export interface ProxySettings {
  readonly protocol: ProxyProtocol;
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  /** Where it came from, for the log: `proxy` (the source's config) or the variable's name. */
  readonly from: string;
}

/** From a source's `proxyCredentialsFile` (`user:password`): used with whichever proxy applies. */
export interface ProxyCredentials {
  readonly username: string;
  readonly password: string;
}

/** A source's `proxy:`: a proxy, or `none` (direct, whatever the environment says). */
export type ProxyChoice = ProxySettings | 'none';

/** curl's default proxy port when the URL has none (https proxies: 443). */
const DEFAULT_PORT: Record<ProxyProtocol, number> = { http: 1080, https: 443, socks5: 1080, socks5h: 1080 };

/** The proxy without credentials: what logs, errors and the status page may show. */
export function describeProxy(p: ProxySettings): string {
  const host = isIP(p.host) === 6 ? `[${p.host}]` : p.host;
  return `${p.protocol}://${host}:${p.port}`;
}

/**
 * Parses a proxy URL (`http://host:3128`, `socks5h://user@host`, or curl's bare `host:port`,
 * meaning http). Returns a one-line problem instead of throwing; the problem never repeats a
 * password.
 */
export function parseProxyUrl(text: string, from: string): ProxySettings | string {
  const trimmed = text.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return `${from}: not a proxy URL; write e.g. http://proxy.example:3128 or socks5h://proxy.example:1080`;
  }
  const protocol = url.protocol.slice(0, -1).toLowerCase();
  // curl's `socks5://` resolves the target locally and `socks5h://` at the proxy; `socks://` is socks5h here.
  const normalised = protocol === 'socks' ? 'socks5h' : protocol;
  if (!isProxyProtocol(normalised)) {
    return `${from}: proxy scheme "${protocol}" is not supported; use http, https, socks5 or socks5h`;
  }
  if (url.hostname === '') return `${from}: the proxy URL names no host`;
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '') {
    return `${from}: a proxy URL is scheme://host:port only; remove the path`;
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    protocol: normalised,
    host,
    port: url.port === '' ? DEFAULT_PORT[normalised] : Number(url.port),
    ...(url.username !== '' && { username: decodeURIComponent(url.username) }),
    ...(url.password !== '' && { password: decodeURIComponent(url.password) }),
    from,
  };
}

function isProxyProtocol(p: string): p is ProxyProtocol {
  return p === 'http' || p === 'https' || p === 'socks5' || p === 'socks5h';
}

/** Reads the first of these variables that is set and not empty. */
function firstSet(env: NodeJS.ProcessEnv, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return { name, value };
  }
  return undefined;
}

/**
 * The proxy the environment gives for a connection to `host:port` made for `scheme` (the URL
 * scheme the connection serves: `http`, `https`, `ftp`, `sftp`, `mqtt`...), or undefined for a
 * direct one. As curl: `<scheme>_proxy` (lower case first), then `ALL_PROXY`, unless `NO_PROXY`
 * matches the host. A variable that does not parse is a problem string.
 */
export function proxyFromEnvironment(
  scheme: string,
  host: string,
  port: number,
  env: NodeJS.ProcessEnv,
): ProxySettings | string | undefined {
  const lower = `${scheme.toLowerCase()}_proxy`;
  const found = firstSet(env, [lower, lower.toUpperCase(), 'all_proxy', 'ALL_PROXY']);
  if (found === undefined) return undefined;
  const noProxy = firstSet(env, ['no_proxy', 'NO_PROXY']);
  if (noProxy !== undefined && matchesNoProxy(host, port, noProxy.value)) return undefined;
  return parseProxyUrl(found.value, found.name);
}

/**
 * curl's NO_PROXY: a comma (or blank) separated list; `*` alone matches every host; a name
 * matches itself and its subdomains (a leading dot is optional); an IP address or CIDR block
 * matches addresses only. `host:port` limits an entry to one port (an extension of curl's rules,
 * as most other clients have it).
 */
export function matchesNoProxy(host: string, port: number, list: string): boolean {
  const target = normaliseHost(host);
  for (const raw of list.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const { name, entryPort } = splitPort(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    if (matchesEntry(target, normaliseHost(name))) return true;
  }
  return false;
}

function normaliseHost(host: string): string {
  return host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
}

/** `example.com:8080` and `[::1]:21` carry a port; a bare IPv6 address does not. */
function splitPort(entry: string): { name: string; entryPort: number | undefined } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed) {
    return { name: bracketed[1] ?? '', entryPort: bracketed[2] !== undefined ? Number(bracketed[2]) : undefined };
  }
  const hostPort = /^([^:]+):(\d+)$/.exec(entry);
  if (hostPort) return { name: hostPort[1] ?? '', entryPort: Number(hostPort[2]) };
  return { name: entry, entryPort: undefined };
}

function matchesEntry(target: string, entry: string): boolean {
  const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
  if (cidr) return isIP(target) !== 0 && inCidr(target, cidr[1] ?? '', Number(cidr[2]));
  if (isIP(entry) !== 0) return isIP(target) !== 0 && sameAddress(target, entry);
  const name = entry.replace(/^\*?\./, '');
  if (name === '') return false;
  return target === name || target.endsWith(`.${name}`);
}

function sameAddress(a: string, b: string): boolean {
  const x = addressBits(a);
  const y = addressBits(b);
  return x !== undefined && y !== undefined && x.bits === y.bits && x.value === y.value;
}

function inCidr(address: string, network: string, prefix: number): boolean {
  const a = addressBits(address);
  const n = addressBits(network);
  if (a === undefined || n === undefined || a.bits !== n.bits || prefix > a.bits) return false;
  const shift = BigInt(a.bits - prefix);
  return a.value >> shift === n.value >> shift;
}

/** An address as a number of 32 or 128 bits (IPv4-mapped IPv6 counts as IPv4). */
function addressBits(address: string): { bits: 32 | 128; value: bigint } | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const text = mapped ? (mapped[1] ?? '') : address;
  if (isIP(text) === 4) {
    const value = text.split('.').reduce((acc, part) => (acc << 8n) + BigInt(Number(part)), 0n);
    return { bits: 32, value };
  }
  if (isIP(text) !== 6) return undefined;
  const [head = '', tail = ''] = text.split('::');
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = text.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const parts = text.includes('::')
    ? [...headParts, ...Array<string>(8 - headParts.length - tailParts.length).fill('0'), ...tailParts]
    : headParts;
  if (parts.some((p) => p.includes('.'))) return undefined; // embedded IPv4 tails: rare, not matched
  const value = parts.reduce((acc, part) => (acc << 16n) + BigInt(Number.parseInt(part || '0', 16)), 0n);
  return { bits: 128, value };
}

/**
 * The proxy for one connection: the source's choice when it made one (`none`: direct), else
 * the environment's. `scheme` names the environment variable curl would read for it.
 */
export function resolveProxy(
  choice: ProxyChoice | undefined,
  scheme: string,
  host: string,
  port: number,
  env: NodeJS.ProcessEnv = process.env,
): ProxySettings | string | undefined {
  if (choice === 'none') return undefined;
  if (choice !== undefined) return choice;
  return proxyFromEnvironment(scheme, host, port, env);
}
