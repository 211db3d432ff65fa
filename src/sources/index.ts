/**
 * Opens the Source for a configured source, by URL scheme. Each kind's module (and its client
 * library: undici, ssh2) is imported only when a config uses it: an FTP-only run-once
 * does not pay ~100 ms and ~10 MB for the HTTP and S3 clients it never calls.
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import { ftpKind } from './ftp/descriptor.js';
import { httpKind } from './http/descriptor.js';
import { COMMON_SOURCE_OPTIONS, type SharedSourceState, type SourceFactory, type SourceKind } from './kind.js';
import { localKind } from './local/descriptor.js';
import { s3Kind } from './s3/descriptor.js';
import { sftpKind } from './sftp/descriptor.js';
import type { Source, SourceConnectOptions, SourceProtocol, SourceSettings } from './source.js';
import { wis2Kind } from './wis2/descriptor.js';

export type { SharedSourceState } from './kind.js';

type Protocol = SourceProtocol;

/** Every source kind, in the order the docs list them. */
export const SOURCE_KINDS: readonly SourceKind[] = [ftpKind, sftpKind, localKind, httpKind, s3Kind, wis2Kind];

const BY_SCHEME = new Map(SOURCE_KINDS.flatMap((k) => k.schemes.map((scheme) => [scheme, k] as const)));

/** Every supported URL scheme, without the colon. */
export const SOURCE_SCHEMES: readonly string[] = [...BY_SCHEME.keys()];

/** The kind of a scheme (`ftps`), or undefined for one no kind serves. */
export function sourceKindOf(scheme: string): SourceKind | undefined {
  return BY_SCHEME.get(scheme as Protocol);
}

/**
 * The options of every kind in one zod shape (each kind's own, then the common ones): what a
 * source entry may contain besides what the engine reads. Which kind an option belongs to is
 * checked by the config normaliser against the entry's scheme.
 */
export function sourceOptionsShape(): typeof COMMON_SOURCE_OPTIONS {
  // Typed as the common options: the config reads only those; each kind reads its own, typed by its descriptor.
  return Object.assign({}, ...SOURCE_KINDS.map((k) => k.options), COMMON_SOURCE_OPTIONS);
}

/** The kind(s) that take option `key`, when it belongs to some kinds only. */
export function kindsTaking(key: string): SourceKind[] {
  return SOURCE_KINDS.filter((k) => Object.hasOwn(k.options, key));
}

const describe = (schema: unknown) => (schema as z.ZodType).description ?? '';

/** docs/sources.md's table, generated here and kept in step by a test: schemes and their own options. */
export function sourceKindsTable(): string {
  const rows = SOURCE_KINDS.map((k) => {
    const options = Object.entries(k.options).map(([name, schema]) => `\`${name}\`: ${describe(schema)}`);
    return `| ${k.schemes.map((s) => `\`${s}://\``).join(', ')} | ${options.join('<br>') || '(common options only)'} |`;
  });
  const common = Object.entries(COMMON_SOURCE_OPTIONS).map(([name, schema]) => `| \`${name}\` | ${describe(schema)} |`);
  return [
    '| scheme | options of this kind only |',
    '|---|---|',
    ...rows,
    '',
    '| common option (every kind) | |',
    '|---|---|',
    ...common,
    '',
  ].join('\n');
}

const factories = new Map<Protocol, SourceFactory>();

/** Imports the source kinds these sources use; openSource then opens them synchronously. */
export async function loadSourceKinds(sources: Iterable<Pick<SourceSettings, 'protocol'>>): Promise<void> {
  for (const protocol of new Set([...sources].map((s) => s.protocol))) {
    const kind = sourceKindOf(protocol);
    // A programming error, not a user's: the config accepts only schemes some kind serves.
    if (!kind) throw new Error(`no source kind serves ${protocol}://`);
    if (!factories.has(protocol)) factories.set(protocol, await kind.load());
  }
}

export function connectOptions(src: SourceSettings, log: Logger): SourceConnectOptions {
  return {
    name: src.name,
    protocol: src.protocol,
    host: src.host,
    port: src.port,
    user: src.user,
    rootPath: src.rootPath,
    ...(src.password !== undefined && { password: src.password }),
    ...(src.privateKey !== undefined && { privateKey: src.privateKey }),
    ...(src.passphrase !== undefined && { passphrase: src.passphrase }),
    tls: src.tls,
    ...(src.hostKey !== undefined && { hostKey: src.hostKey }),
    ...(src.knownHosts !== undefined && { knownHosts: src.knownHosts }),
    timezone: src.timezone,
    maxConnections: src.maxConnections,
    connectTimeoutMs: src.connectTimeoutMs,
    dataTimeoutMs: src.dataTimeoutMs,
    ...(src.bearerToken !== undefined && { bearerToken: src.bearerToken }),
    ...(src.proxy !== undefined && { proxy: src.proxy }),
    ...(src.proxyCredentials !== undefined && { proxyCredentials: src.proxyCredentials }),
    ...(src.s3 !== undefined && { s3: src.s3 }),
    ...(src.wis2 !== undefined && { wis2: src.wis2 }),
    log,
  };
}

export function openSource(src: SourceSettings, log: Logger, shared: SharedSourceState): Source {
  const factory = factories.get(src.protocol);
  // A programming error, not a user's: the composition root loads the kinds of every config it opens.
  if (!factory) throw new Error(`source kind ${src.protocol} was not loaded (call loadSourceKinds first)`);
  const opts = { ...connectOptions(src, log), ...(shared.stateDir !== undefined && { stateDir: shared.stateDir }) };
  return factory(opts, shared);
}
