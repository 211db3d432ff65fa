/**
 * Which of the configured hosts to write to, as libpq chooses (node-postgres takes one host and
 * has no `target_session_attrs`): each host in the order given, the first that accepts a
 * connection and, for `read-write`, has `transaction_read_only` off (for `primary`, is not in
 * recovery). And, classified once here, the errors that mean "this server is not (or no longer)
 * the primary": the ledger then looks for the host that is.
 */
import pg from 'pg';
import { formatHost, type PgHost, type TargetSessionAttrs } from '../../util/postgres-conninfo.js';

/**
 * SQLSTATEs after which another host may be the primary: read-only (a demoted primary or a
 * standby), the server shutting down or crashed, starting up or in recovery, and the
 * connection exceptions (class 08).
 */
const NOT_PRIMARY_SQLSTATES = new Set([
  '25006',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);
/** Socket errors of a server that is gone or unreachable. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** node-postgres reports a closed connection without a code; these are its messages for it. */
const PG_CLOSED_MESSAGES = [
  'Connection terminated',
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
  'timeout exceeded when trying to connect',
];

/** True when the error says the connection or the server is gone, or cannot take writes. */
export function isPrimaryLost(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && (NOT_PRIMARY_SQLSTATES.has(e.code) || SOCKET_CODES.has(e.code))) return true;
  // Node's AggregateError (IPv4 and IPv6 both refused) carries the socket errors in `errors`.
  if (Array.isArray(e.errors) && e.errors.some(isPrimaryLost)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return PG_CLOSED_MESSAGES.some((m) => message.startsWith(m));
}

/** The server refused the statement or the session without doing anything: safe to run again elsewhere. */
export function isRefusedUndone(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '25006' || code === '57P03';
}

/** Connecting to a host that does not answer: given up after this long, and the next host tried. */
const PROBE_TIMEOUT_MS = 5_000;

export interface PrimaryProbe {
  /** The first acceptable host, in the order given. */
  readonly found?: PgHost;
  /** Why each host before it (or every host) was passed over: `a:5432: ECONNREFUSED`. */
  readonly passed: readonly string[];
  /** The first host's error when no host answered at all (for the one-line unreachable error). */
  readonly firstError?: unknown;
}

/** Try each host in order; the first that satisfies `target` is the one to use. */
export async function findPrimary(
  hosts: readonly PgHost[],
  target: TargetSessionAttrs,
  client: pg.ClientConfig,
): Promise<PrimaryProbe> {
  const passed: string[] = [];
  let firstError: unknown;
  for (const h of hosts) {
    const probe = new pg.Client({
      ...client,
      host: h.host,
      ...(h.port !== undefined && { port: h.port }),
      connectionTimeoutMillis: Math.min(PROBE_TIMEOUT_MS, client.connectionTimeoutMillis ?? PROBE_TIMEOUT_MS),
    });
    // A probe's socket error after connect (the server going away meanwhile) must not crash the process.
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      const why = await unacceptable(probe, target);
      if (why === undefined) return { found: h, passed };
      passed.push(`${formatHost(h)}: ${why}`);
    } catch (err) {
      firstError ??= err;
      passed.push(`${formatHost(h)}: ${describePgError(err)}`);
      // A login that fails inside pg leaves its socket open until the server's authentication timeout.
      (probe as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    } finally {
      await probe.end().catch(() => undefined);
    }
  }
  return { passed, firstError };
}

async function unacceptable(c: pg.Client, target: TargetSessionAttrs): Promise<string | undefined> {
  if (target === 'any') return undefined;
  const r = await c.query<{ recovery: boolean; ro: string }>(
    "SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS ro",
  );
  const row = r.rows[0];
  if (target === 'primary') return row?.recovery ? 'a standby (in recovery)' : undefined;
  if (row?.recovery) return 'a standby (read-only)';
  return row?.ro === 'on' ? 'read-only (transaction_read_only is on)' : undefined;
}

/** A connection error in one line: code and message, never a connection string or password. */
export function describePgError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  // An AggregateError (IPv4 and IPv6 both refused) carries its causes in `errors`.
  const first = Array.isArray(e.errors) && e.errors.length > 0 ? (e.errors[0] as typeof e) : e;
  const code = typeof first.code === 'string' ? first.code : typeof e.code === 'string' ? e.code : undefined;
  const message = typeof first.message === 'string' && first.message !== '' ? first.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
