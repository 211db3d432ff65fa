/**
 * One `sources[i]` entry, validated, to a complete SourceConfig. What depends on the protocol
 * (ports, default user, root path, the kind's own options and settings, what `after:` can do)
 * comes from the kind's descriptor (src/sources/<kind>/descriptor.ts); this file holds only what
 * every source has.
 */
import path from 'node:path';
import { kindsTaking, sourceKindOf } from '../sources/index.js';
import type { KindContext, SourceKind } from '../sources/kind.js';
import { readProxyOption } from '../sources/proxy/proxy-option.js';
import type { SourceProtocol } from '../sources/source.js';
import { redactUrl } from '../util/redact-url.js';
import { volumeSpecOf } from '../volumes/spec.js';
import type { Geometry, SourceConfig, WnmSourceConfig } from './load.js';
import type { ParsedSource } from './schema.js';
import { readSecretFile } from './secrets.js';

export interface NormaliseContext {
  baseDir: string;
  issues: string[];
  needSecrets: boolean;
  env: NodeJS.ProcessEnv;
}

/** `given`: the keys written in the entry (before defaults), to refuse another kind's options. */
export function normaliseSource(
  s: ParsedSource,
  given: readonly string[],
  i: number,
  n: NormaliseContext,
): SourceConfig {
  const at = `sources[${i}]`;
  const url = new URL(s.url);
  const protocol = url.protocol.slice(0, -1) as SourceProtocol;
  // The schema accepts only schemes some kind serves.
  const kind = sourceKindOf(protocol) as SourceKind;
  const ctx = kindContext(s, url, protocol, at, n);
  const password = s.passwordFile ? ctx.readSecret(s.passwordFile, `${at}.passwordFile`) : s.password;
  const ca = s.ca ? ctx.readSecret(s.ca, `${at}.ca`) : undefined;
  refuseOtherKindsOptions(kind, given, at, n.issues);
  const settings = kind.settings?.(ctx) ?? {};
  const after = afterAction(s.after, kind, at, n.issues);
  const proxy = readProxyOption(s, protocol, at, ctx.readSecret, n.issues);
  return {
    name: s.name,
    enabled: s.enabled,
    protocol,
    host: url.hostname,
    port: url.port ? Number(url.port) : kind.defaultPort(protocol, s),
    user: decodeURIComponent(url.username) || (kind.defaultUser ?? ''),
    rootPath: kind.rootPath ? kind.rootPath(url) : decodeURIComponent(url.pathname) || '/',
    displayUrl: redactUrl(url.href),
    ...(password !== undefined && { password }),
    ...settings,
    ...proxy,
    tls: {
      mode: kind.tlsMode?.(protocol, s) ?? 'none',
      insecure: s.insecure,
      ...(ca !== undefined && { ca }),
      ...(s.fingerprint && { fingerprint: s.fingerprint }),
    },
    timezone: s.timezone,
    include: s.include,
    exclude: s.exclude,
    concurrency: s.concurrency,
    maxConnections: s.maxConnections ?? s.concurrency,
    minAgeMs: s.minAge,
    ...(s.maxAge !== undefined && { maxAgeMs: s.maxAge }),
    stableListings: kind.announcesComplete ? 1 : s.stableListings,
    // Notifications are no listings: nothing is ever missing from one.
    goneAfterListings: kind.announcesComplete ? 0 : s.goneAfterListings,
    mirrorDeletes: s.mirrorDeletes,
    settleDelayMs: s.settleDelay,
    maxFilesPerPoll: s.maxFilesPerPoll,
    maxAttempts: s.maxAttempts,
    ...(s.schedule !== undefined && { schedule: s.schedule }),
    ...(s.every !== undefined && { everyMs: s.every }),
    ...(s.expectEvery !== undefined && { expectEveryMs: s.expectEvery }),
    ...(s.expect !== undefined && s.expect.length > 0 && { expect: s.expect }),
    connectTimeoutMs: s.connectTimeout,
    dataTimeoutMs: s.dataTimeout,
    ...(s.wnm !== undefined && { wnm: normaliseWnm(s.wnm, `${at}.wnm`, n.issues) }),
    ...(after && { after }),
    ...(s.volumes !== undefined && { volumes: volumeSpecOf(s.volumes) }),
  };
}

function kindContext(
  s: ParsedSource,
  url: URL,
  protocol: SourceProtocol,
  at: string,
  n: NormaliseContext,
): KindContext<never> {
  const resolve = (p: string) => path.resolve(n.baseDir, p);
  return {
    // The entry was parsed with every kind's options; each kind reads its own.
    options: s as never,
    url,
    protocol,
    at,
    env: n.env,
    needSecrets: n.needSecrets,
    resolve,
    readSecret: (file, where) => readSecretFile(resolve(file), where, n.needSecrets ? n.issues : undefined),
    issue: (line) => n.issues.push(line),
  };
}

/** An option of some kinds only, written in a source of another kind: one line naming the kinds that take it. */
function refuseOtherKindsOptions(kind: SourceKind, given: readonly string[], at: string, issues: string[]): void {
  for (const key of given) {
    const takers = kindsTaking(key);
    if (takers.length > 0 && !takers.includes(kind))
      issues.push(`${at}.${key}: applies to ${takers.map((k) => k.label).join(', ')} sources only; remove it`);
  }
}

function afterAction(
  after: ParsedSource['after'],
  kind: SourceKind,
  at: string,
  issues: string[],
): SourceConfig['after'] | undefined {
  if (after === undefined) return undefined;
  const can = kind.after ?? { delete: true, move: true, refusal: '' };
  if (after === 'delete' ? !can.delete : !can.move) {
    issues.push(`${at}.after: ${can.refusal}`);
    return undefined;
  }
  return after === 'delete' ? { action: 'delete' } : { action: 'move', dir: after.move.replace(/^\/+|\/+$/g, '') };
}

function normaliseWnm(w: NonNullable<ParsedSource['wnm']>, at: string, issues: string[]): WnmSourceConfig {
  let datetimePattern: RegExp | undefined;
  if (w.datetimePattern !== undefined) {
    try {
      datetimePattern = new RegExp(w.datetimePattern);
      if (!/\(\?<Y>/.test(w.datetimePattern)) issues.push(`${at}.datetimePattern: name the year group (?<Y>\\d{4})`);
    } catch (err) {
      issues.push(`${at}.datetimePattern: not a regular expression (${(err as Error).message})`);
    }
  }
  return {
    geometry: w.geometry as Geometry | null,
    ...(datetimePattern && { datetimePattern }),
    ...(w.metadataId !== undefined && { metadataId: w.metadataId }),
    ...(w.mediaType !== undefined && { mediaType: w.mediaType }),
    ...(w.topics !== undefined && { topics: w.topics }),
  };
}
