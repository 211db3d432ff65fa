/**
 * A PostgreSQL connection string in libpq's forms, with several hosts: the URI
 * `postgres://user@a:5432,b:5433/db?target_session_attrs=read-write`, its query form
 * `postgres://user@/db?host=a,b&port=5432,5433`, and the keyword/value form
 * `host=a,b port=5432,5433 dbname=db user=poller`. node-postgres takes one host, so the hosts
 * are split out here and the ledger picks the primary among them itself; what remains is a
 * one-host URL node-postgres parses as before. Pure: no I/O, one-line errors.
 */

export interface PgHost {
  readonly host: string;
  /** Absent: node-postgres's default (PGPORT or 5432). */
  readonly port?: number;
}

/**
 * Which server a session may use. The ledger writes, so only these three make sense for it;
 * with several hosts the default is `read-write` (libpq's `any` would settle on a standby).
 */
export type TargetSessionAttrs = 'any' | 'read-write' | 'primary';

export interface PgConnInfo {
  /** In the order given: the first acceptable one is used. */
  readonly hosts: readonly PgHost[];
  readonly target: TargetSessionAttrs;
  /** A URL with the first host only and without the multi-host parameters, for node-postgres. */
  readonly baseUrl: string;
  /** Every host, no userinfo: for logs, the status page and errors. */
  readonly displayUrl: string;
}

const URI = /^(postgres(?:ql)?:\/\/)(?:([^@/?#]*)@)?([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i;
/** `host=a,b port=1` with at least one keyword libpq knows for a server: a keyword/value string. */
const KEYWORD_FORM = /^\s*[a-z_]+\s*=/i;

/** True for a connection string in one of the forms this module reads (not a SQLite file name). */
export function isPostgresConnInfo(v: string): boolean {
  return /^postgres(ql)?:\/\//i.test(v) || (KEYWORD_FORM.test(v) && /(^|\s)(host|hostaddr|dbname)\s*=/i.test(v));
}

/** Parse; throws an Error whose message is one line naming the problem and the fix. */
export function parsePgConnInfo(text: string): PgConnInfo {
  const uri = /^postgres(ql)?:\/\//i.test(text) ? text : keywordsToUri(text);
  const m = URI.exec(uri);
  if (!m) throw new Error('not a PostgreSQL URL; write e.g. postgres://poller@db.example.org/poller');
  const [, scheme = 'postgres://', userinfo, authority = '', pathPart = '', query = ''] = m;
  const params = new URLSearchParams(query.slice(1));
  const hostList = [...splitList(decodeURIComponent(authority)).map(parseHostPort), ...queryHosts(params)];
  const hosts = hostList.filter((h) => h.host !== '');
  if (hosts.length === 0) throw new Error('no host; write postgres://user@host[:port]/database');
  const target = targetOf(params.get('target_session_attrs'), hosts.length);
  for (const k of ['host', 'port', 'target_session_attrs']) params.delete(k);
  const rest = params.toString();
  const first = hosts[0] as PgHost;
  const user = userinfo !== undefined ? `${userinfo}@` : '';
  const tail = `${pathPart}${rest ? `?${rest}` : ''}`;
  const baseUrl = `${scheme}${user}${formatHost(first)}${tail}`;
  // The display keeps what tells the hosts apart and drops the user (and any password).
  const shownTarget = target === 'any' ? '' : `${rest ? '&' : '?'}target_session_attrs=${target}`;
  const displayUrl = `${scheme}${hosts.map(formatHost).join(',')}${tail}${hosts.length > 1 ? shownTarget : ''}`;
  return { hosts, target, baseUrl, displayUrl };
}

function targetOf(v: string | null, hostCount: number): TargetSessionAttrs {
  if (v === null) return hostCount > 1 ? 'read-write' : 'any';
  if (v === 'any' || v === 'read-write' || v === 'primary') return v;
  if (['read-only', 'standby', 'prefer-standby'].includes(v))
    throw new Error(`target_session_attrs=${v}: the ledger writes, so it needs the primary; use read-write`);
  throw new Error(`target_session_attrs=${v} is not a libpq value; use read-write, primary or any`);
}

function splitList(s: string): string[] {
  return s === '' ? [] : s.split(',').map((x) => x.trim());
}

function parseHostPort(s: string): PgHost {
  // [::1]:5432, ::1 in brackets only (a bare IPv6 address is ambiguous with a port).
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(s);
  const [host, port] = v6 ? [v6[1] ?? '', v6[2]] : splitPort(s);
  return port === undefined || port === '' ? { host } : { host, port: parsePort(port, s) };
}

function splitPort(s: string): [string, string | undefined] {
  const i = s.lastIndexOf(':');
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function parsePort(p: string, where: string): number {
  const n = Number(p);
  if (!/^\d+$/.test(p) || n < 1 || n > 65535) throw new Error(`host "${where}": port "${p}" is not a number 1-65535`);
  return n;
}

/** `?host=a,b&port=1,2`: libpq pairs them by position; one port applies to every host. */
function queryHosts(params: URLSearchParams): PgHost[] {
  const names = splitList(params.get('host') ?? '');
  const ports = splitList(params.get('port') ?? '');
  if (ports.length > 1 && ports.length !== names.length)
    throw new Error(`${names.length} host(s) but ${ports.length} ports; give one port, or one per host`);
  return names.map((host, i) => {
    const p = ports.length === 1 ? ports[0] : ports[i];
    return p === undefined || p === '' ? { host } : { host, port: parsePort(p, host) };
  });
}

/** `host:port`, an IPv6 address in brackets. */
export function formatHost(h: PgHost): string {
  const host = h.host.includes(':') ? `[${h.host}]` : h.host;
  return h.port === undefined ? host : `${host}:${h.port}`;
}

/** `host=a,b port=1 dbname=x user=y key='quoted value'` as the equivalent URI. */
function keywordsToUri(text: string): string {
  const pairs = new Map<string, string>();
  const re = /\s*([a-z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S*))/giy;
  let at = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    pairs.set((m[1] ?? '').toLowerCase(), m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? ''));
    at = re.lastIndex;
  }
  if (text.slice(at).trim() !== '')
    throw new Error(
      `cannot read "${text.slice(at).trim().split(/\s/)[0]}"; write keyword=value pairs (host=db dbname=poller)`,
    );
  if (pairs.has('password'))
    throw new Error(
      'the connection string contains a password; move it to `ledger.passwordFile` (or PGPASSWORD / PGPASSFILE)',
    );
  const user = pairs.get('user');
  const db = pairs.get('dbname') ?? '';
  pairs.delete('user');
  pairs.delete('dbname');
  const query = new URLSearchParams([...pairs]).toString();
  return `postgres://${user ? `${encodeURIComponent(user)}@` : ''}/${encodeURIComponent(db)}${query ? `?${query}` : ''}`;
}
