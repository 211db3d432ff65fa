/**
 * Config loading: file → YAML parse → `${ENV}` interpolation → zod validation → secrets read from
 * files → one complete, frozen `Config`. Every problem is collected and thrown at once as a
 * ConfigError with one line per problem, by path.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { SourceSettings } from '../sources/source.js';
import { parsePgConnInfo } from '../util/postgres-conninfo.js';
import { redactUrl } from '../util/redact-url.js';
import type { VolumeSpec } from '../volumes/spec.js';
import type { ExpectRuleOutput } from './expect.js';
import { interpolateEnv } from './interpolate.js';
import {
  configSchema,
  type EVENT_KIND_NAMES,
  isPostgresUrl,
  type ParsedConfig,
  type ParsedPlugin,
  type ParsedSink,
} from './schema.js';
import { readSecretFile } from './secrets.js';
import { normaliseSource } from './source.js';

/**
 * A source, complete: defaults applied, URL split, secrets loaded, durations in ms. The connection
 * settings (host, port, user, secrets, TLS, timeouts, per-kind settings) are the sources'
 * `SourceSettings`; the rest is what the engine does with the files.
 */
export interface SourceConfig extends SourceSettings {
  readonly enabled: boolean;
  /** URL without userinfo: safe for logs and the ledger. */
  readonly displayUrl: string;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly concurrency: number;
  readonly minAgeMs: number;
  readonly maxAgeMs?: number;
  /** Complete listings in a row without a file before it is `gone`; 0: never (WIS2: no listings). */
  readonly goneAfterListings: number;
  /** Remove the landed copy of a gone file. */
  readonly mirrorDeletes: boolean;
  readonly stableListings: number;
  readonly settleDelayMs: number;
  readonly maxFilesPerPoll: number;
  readonly maxAttempts: number;
  readonly schedule?: string;
  readonly everyMs?: number;
  /** A new file is expected at least this often (`expectEvery`); drives "late". */
  readonly expectEveryMs?: number;
  /** Products that must keep arriving (`expect:`), each with its cadence and grace; see src/lateness/. */
  readonly expect?: readonly ExpectRuleOutput[];
  /** WIS2 Notification Message properties of this source's files. */
  readonly wnm?: WnmSourceConfig;
  /** Remote action once a file is processed: delete it, or move it into `dir` (relative to the root). */
  readonly after?: { readonly action: 'delete' } | { readonly action: 'move'; readonly dir: string };
  /** How this source's files group into radar volumes; absent: no volumes. */
  readonly volumes?: VolumeSpec;
}

export type Geometry =
  | { readonly type: 'Point'; readonly coordinates: readonly number[] }
  | { readonly type: 'Polygon'; readonly coordinates: readonly (readonly (readonly number[])[])[] };

export interface WnmSourceConfig {
  readonly geometry: Geometry | null;
  readonly datetimePattern?: RegExp;
  readonly metadataId?: string;
  readonly mediaType?: string;
  /** Topic by rule, first match wins. */
  readonly topics?: readonly WnmTopicRule[];
}

export interface WnmTopicRule {
  readonly match?: readonly string[];
  readonly mediaType?: string;
  readonly volumes?: boolean;
  readonly topic: string;
}

export type SinkType = 'mqtt' | 'nats' | 'amqp' | 'file' | 'webhook';

/** One event sink, complete: secrets loaded, durations in ms. */
export interface SinkConfig {
  readonly name: string;
  readonly type: SinkType;
  /** As configured; may carry a user name but never a password. */
  readonly url: string;
  readonly kinds: readonly (typeof EVENT_KIND_NAMES)[number][];
  readonly sources: readonly string[] | null;
  readonly topic?: string;
  readonly lifecycleTopic?: string;
  readonly format: 'wnm' | 'sr3-v03';
  readonly user?: string;
  readonly password?: string;
  readonly clientId?: string;
  readonly mqttVersion?: 4 | 5;
  readonly ca?: string;
  readonly insecure: boolean;
  readonly exchange: string;
  readonly stream: string;
  readonly publicBaseUrl?: string;
  readonly inlineContent: boolean;
  readonly batch: number;
  readonly inFlight: number;
  readonly lagAlertMs: number;
  readonly timeoutMs: number;
}

export interface EventsConfig {
  readonly centreId: string;
  /** A copy of the WIS2 Topic Hierarchy to check topics against. */
  readonly topicHierarchy?: string;
  readonly retentionMs: number;
  readonly sinks: readonly SinkConfig[];
}

export interface PluginConfig {
  readonly use: string;
  readonly name?: string;
  readonly match?: readonly string[];
  readonly sources?: readonly string[];
  readonly options: Readonly<Record<string, unknown>>;
  readonly timeoutMs?: number;
  readonly maxAttempts: number;
  readonly concurrency?: number;
  readonly isolate?: 'worker' | 'process' | 'none';
  readonly memoryLimitMb?: number;
}

/** `http:`: the probe, metrics and status page listener. */
export interface HttpConfig {
  readonly host: string;
  readonly port: number;
  /** How often the status page polls `/api/status`. */
  readonly refreshMs: number;
  /** Credentials asked for everything but the probes; read from their files. */
  readonly auth?: {
    readonly basic?: { readonly user: string; readonly password: string };
    readonly token?: string;
  };
}

/** A PostgreSQL ledger: where, how to log in, how many connections. */
export interface PostgresLedgerConfig {
  /** Without a password. */
  readonly url: string;
  /** Without userinfo: safe for logs, status and errors. */
  readonly displayUrl: string;
  /** From `password` or `passwordFile`; absent: PGPASSWORD or PGPASSFILE (~/.pgpass) apply. */
  readonly password?: string;
  readonly poolSize: number;
}

export interface Config {
  /** Directory the config file is in; relative plugin paths resolve from here. */
  readonly baseDir: string;
  readonly landing: string;
  /** The SQLite ledger file; with `postgres`, the display URL of that ledger. */
  readonly ledger: string;
  /** Set when the ledger is a PostgreSQL database shared by several pollers. */
  readonly postgres?: PostgresLedgerConfig;
  /** `instance:`; absent: host:pid. */
  readonly instance?: string;
  /**
   * PostgreSQL ledger: `shared`, one landing root every instance sees; `per-host`, each instance's
   * own, and the ledger records which instance holds each landed file.
   */
  readonly landingMode: 'shared' | 'per-host';
  /** An instance silent this long is swept (PostgreSQL ledger). */
  readonly leaseTimeMs: number;
  readonly stateDir: string;
  readonly logLevel: string;
  readonly http?: HttpConfig;
  readonly maxTransfers: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Ledger retention: windows come from each source's `maxAgeMs` (defaulted from `keepMs`). */
  readonly retention: {
    /** The window of sources without their own maxAge; absent: their rows are kept forever. */
    readonly keepMs?: number;
    readonly quarantinedMs: number;
    readonly everyMs: number;
  };
  readonly sources: readonly SourceConfig[];
  readonly plugins: readonly PluginConfig[];
  readonly events?: EventsConfig;
}

/** `sources[0].url` from zod's path array. */
export function formatIssuePath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const part of p) out += typeof part === 'number' ? `[${part}]` : out ? `.${String(part)}` : String(part);
  return out || '(root)';
}

function zodIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${formatIssuePath(i.path)}: ${i.message}`);
}

/** Every host, no userinfo; a string the schema refused (issues already listed) is only redacted. */
function pgDisplayUrl(url: string): string {
  try {
    return parsePgConnInfo(url).displayUrl;
  } catch {
    return redactUrl(url);
  }
}

function normalisePostgresLedger(
  ledger: string | { url: string; password?: string | undefined; passwordFile?: string | undefined; pool: number },
  baseDir: string,
  issues: string[],
  needSecrets: boolean,
): PostgresLedgerConfig | undefined {
  const spec = typeof ledger === 'string' ? (isPostgresUrl(ledger) ? { url: ledger, pool: 4 } : undefined) : ledger;
  if (!spec) return undefined;
  const password =
    'passwordFile' in spec && spec.passwordFile
      ? readSecretFile(
          path.resolve(baseDir, spec.passwordFile),
          'ledger.passwordFile',
          needSecrets ? issues : undefined,
        )
      : 'password' in spec
        ? spec.password
        : undefined;
  return {
    url: spec.url,
    displayUrl: pgDisplayUrl(spec.url),
    ...(password !== undefined && { password }),
    poolSize: spec.pool,
  };
}

function normaliseSink(s: ParsedSink, i: number, baseDir: string, issues: string[], needSecrets: boolean): SinkConfig {
  const at = `events.sinks[${i}]`;
  const resolve = (p: string) => path.resolve(baseDir, p);
  const secretIssues = needSecrets ? issues : undefined;
  const password = s.passwordFile
    ? readSecretFile(resolve(s.passwordFile), `${at}.passwordFile`, secretIssues)
    : s.password;
  const ca = s.ca ? readSecretFile(resolve(s.ca), `${at}.ca`, secretIssues) : undefined;
  if (s.type === 'nats' && s.insecure)
    issues.push(`${at}.insecure: the NATS client always verifies certificates; give the broker's CA in \`ca\` instead`);
  return {
    name: s.name,
    type: s.type,
    url: s.type === 'file' ? resolve(s.url) : s.url,
    kinds: s.kinds,
    sources: s.sources ?? null,
    ...(s.topic !== undefined && { topic: s.topic }),
    ...(s.lifecycleTopic !== undefined && { lifecycleTopic: s.lifecycleTopic }),
    format: s.format,
    ...(s.user !== undefined && { user: s.user }),
    ...(password !== undefined && { password }),
    ...(s.clientId !== undefined && { clientId: s.clientId }),
    ...(s.mqttVersion !== undefined && { mqttVersion: s.mqttVersion }),
    ...(ca !== undefined && { ca }),
    insecure: s.insecure,
    exchange: s.exchange,
    stream: s.stream,
    ...(s.publicBaseUrl !== undefined && { publicBaseUrl: s.publicBaseUrl.replace(/\/+$/, '') }),
    inlineContent: s.inlineContent,
    batch: s.batch,
    inFlight: s.inFlight,
    lagAlertMs: s.lagAlert,
    timeoutMs: s.timeout,
  };
}

function normaliseHttp(
  h: NonNullable<ParsedConfig['http']>,
  baseDir: string,
  issues: string[],
  needSecrets: boolean,
): HttpConfig {
  const secretIssues = needSecrets ? issues : undefined;
  const a = h.auth;
  const password =
    a?.passwordFile === undefined
      ? undefined
      : readSecretFile(path.resolve(baseDir, a.passwordFile), 'http.auth.passwordFile', secretIssues);
  const token =
    a?.tokenFile === undefined
      ? undefined
      : readSecretFile(path.resolve(baseDir, a.tokenFile), 'http.auth.tokenFile', secretIssues);
  if (needSecrets && (password === '' || token === ''))
    issues.push('http.auth: a password or token file is empty; write the secret into it');
  const basic = a?.user !== undefined && password ? { user: a.user, password } : undefined;
  return {
    host: h.host,
    port: h.port,
    refreshMs: h.refresh,
    ...(a && { auth: { ...(basic && { basic }), ...(token && { token }) } }),
  };
}

function normalisePlugin(p: ParsedPlugin): PluginConfig {
  return {
    use: p.use,
    ...(p.name !== undefined && { name: p.name }),
    ...(p.match !== undefined && { match: p.match }),
    ...(p.sources !== undefined && { sources: p.sources }),
    options: p.options,
    ...(p.timeout !== undefined && { timeoutMs: p.timeout }),
    maxAttempts: p.maxAttempts,
    ...(p.concurrency !== undefined && { concurrency: p.concurrency }),
    ...(p.isolate !== undefined && { isolate: p.isolate }),
    ...(p.memoryLimit !== undefined && { memoryLimitMb: p.memoryLimit }),
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export interface LoadOptions {
  /**
   * Secrets (unset variables, unreadable password/key files) are problems only for commands that
   * connect; `poller status` must work where $CREDENTIALS_DIRECTORY is not set. @default true
   */
  needSecrets?: boolean;
}

/** Validate an already-parsed document (from YAML/JSON or built in code). */
export function buildConfig(
  doc: unknown,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: LoadOptions = {},
): Config {
  const needSecrets = opts.needSecrets ?? true;
  const interpolated = interpolateEnv(doc, env, !needSecrets);
  const issues = [...interpolated.issues];
  const parsed = configSchema.safeParse(interpolated.value);
  if (!parsed.success) throw new ConfigError([...issues, ...zodIssues(parsed.error)]);
  const c = parsed.data;
  // `retention.keep` is the maxAge of sources without one: a row is pruned only once its file can
  // no longer be taken from a listing, so a pruned file is never fetched again.
  const keep = c.retention.keep;
  const written = (interpolated.value as { sources?: unknown[] }).sources ?? [];
  const sources = c.sources.map((s, i) =>
    normaliseSource(
      s.maxAge === undefined && keep !== undefined ? { ...s, maxAge: keep } : s,
      Object.keys(written[i] ?? {}),
      i,
      { baseDir, issues, needSecrets, env },
    ),
  );
  c.plugins.forEach((p, i) => {
    for (const name of p.sources ?? []) {
      if (!sources.some((s) => s.name === name)) issues.push(`plugins[${i}].sources: no source named "${name}"`);
    }
  });
  const events: EventsConfig | undefined = c.events && {
    centreId: c.events.centreId,
    ...(c.events.topicHierarchy !== undefined && { topicHierarchy: path.resolve(baseDir, c.events.topicHierarchy) }),
    retentionMs: c.events.retention,
    sinks: c.events.sinks.map((s, i) => normaliseSink(s, i, baseDir, issues, needSecrets)),
  };
  const http = c.http && normaliseHttp(c.http, baseDir, issues, needSecrets);
  const postgres = normalisePostgresLedger(c.ledger, baseDir, issues, needSecrets);
  if (issues.length > 0) throw new ConfigError(issues);
  const landing = path.resolve(baseDir, c.landing);
  return deepFreeze({
    baseDir,
    landing,
    ledger: postgres ? postgres.displayUrl : path.resolve(baseDir, c.ledger as string),
    ...(postgres && { postgres }),
    ...(c.instance !== undefined && { instance: c.instance }),
    landingMode: c.landingMode,
    leaseTimeMs: c.leaseTime,
    stateDir: c.stateDir ? path.resolve(baseDir, c.stateDir) : path.join(landing, '.state'),
    logLevel: c.log.level,
    ...(http && { http }),
    maxTransfers: c.maxTransfers,
    retryBaseMs: c.retryBase,
    retryMaxMs: c.retryMax,
    retention: {
      ...(keep !== undefined && { keepMs: keep }),
      quarantinedMs: c.retention.quarantined,
      everyMs: c.retention.every,
    },
    sources,
    plugins: c.plugins.map(normalisePlugin),
    ...(events && { events }),
  });
}

/** Load and validate a config file (YAML or JSON). Throws ConfigError listing every problem. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([
      `${file}: cannot read the config file (${(err as NodeJS.ErrnoException).code ?? 'error'}); pass --config with an existing file`,
    ]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    const first = String((err as Error).message).split('\n')[0];
    throw new ConfigError([`${file}: not valid YAML: ${first}`]);
  }
  return buildConfig(doc, path.dirname(path.resolve(file)), env, opts);
}
