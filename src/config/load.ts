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
import { type ProxyOptionResult, readProxyOption } from '../sources/proxy/proxy-option.js';
import type { S3Settings, SourceSettings, Wis2Settings } from '../sources/source.js';
import { redactUrl } from '../util/redact-url.js';
import { type VolumeSpec, volumeSpecOf } from '../volumes/spec.js';
import type { ExpectRuleOutput } from './expect.js';
import { interpolateEnv } from './interpolate.js';
import {
  configSchema,
  type EVENT_KIND_NAMES,
  isPostgresUrl,
  type ParsedConfig,
  type ParsedPlugin,
  type ParsedSink,
  type ParsedSource,
} from './schema.js';

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

const DEFAULT_PORTS: Record<string, number> = {
  ftp: 21,
  ftps: 21,
  sftp: 22,
  file: 0,
  http: 80,
  https: 443,
  s3: 443,
  'wis2+mqtt': 1883,
  'wis2+mqtts': 8883,
  'wis2+wss': 443,
};

/** MQTT topic filter rules: `+` and `#` fill a whole level, `#` only the last (after `$share/<group>/`). */
function isTopicFilter(topic: string): boolean {
  const levels = topic.replace(/^\$share\/[^/+#]+\//, '').split('/');
  return levels.every(
    (l, i) => (!l.includes('+') && !l.includes('#')) || l === '+' || (l === '#' && i === levels.length - 1),
  );
}

/**
 * The topic filter of a `wis2+mqtt://broker/<filter>` URL: the raw text after the authority,
 * percent-decoded. Read from the text, not from `URL`, because a filter's `#` is a URL fragment.
 */
export function wis2TopicOf(rawUrl: string): string {
  const afterScheme = rawUrl.slice(rawUrl.indexOf('//') + 2);
  const slash = afterScheme.indexOf('/');
  if (slash < 0) return '';
  try {
    return decodeURIComponent(afterScheme.slice(slash + 1));
  } catch {
    return afterScheme.slice(slash + 1);
  }
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

function readSecretFile(file: string, at: string, issues: string[] | undefined): string | undefined {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    issues?.push(
      `${at}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); check the path and its permissions`,
    );
    return undefined;
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
    displayUrl: redactUrl(spec.url),
    ...(password !== undefined && { password }),
    poolSize: spec.pool,
  };
}

function normaliseSource(
  s: ParsedSource,
  i: number,
  baseDir: string,
  issues: string[],
  needSecrets: boolean,
  env: NodeJS.ProcessEnv,
): SourceConfig {
  const at = `sources[${i}]`;
  const url = new URL(s.url);
  const protocol = url.protocol.slice(0, -1) as SourceConfig['protocol'];
  const resolve = (p: string) => path.resolve(baseDir, p);
  const secretIssues = needSecrets ? issues : undefined;
  const password = s.passwordFile
    ? readSecretFile(resolve(s.passwordFile), `${at}.passwordFile`, secretIssues)
    : s.password;
  const passphrase = s.passphraseFile
    ? readSecretFile(resolve(s.passphraseFile), `${at}.passphraseFile`, secretIssues)
    : s.passphrase;
  let privateKey: Buffer | undefined;
  if (s.privateKeyFile) {
    const text = readSecretFile(resolve(s.privateKeyFile), `${at}.privateKeyFile`, secretIssues);
    privateKey = text === undefined ? undefined : Buffer.from(text);
  }
  let ca: string | undefined;
  if (s.ca) ca = readSecretFile(resolve(s.ca), `${at}.ca`, secretIssues);
  const tlsMode = s.tls ?? (protocol === 'ftps' ? 'explicit' : 'none');
  if (tlsMode !== 'none' && protocol !== 'ftp' && protocol !== 'ftps') {
    issues.push(`${at}.tls: TLS modes apply to ftp/ftps sources only; remove it`);
  }
  const rootPath =
    protocol === 'file'
      ? decodeURIComponent(url.pathname)
      : protocol === 'wis2+mqtt' || protocol === 'wis2+mqtts' || protocol === 'wis2+wss'
        ? '/'
        : decodeURIComponent(url.pathname) || '/';
  const isHttp = protocol === 'http' || protocol === 'https';
  const bearerToken = s.bearerTokenFile
    ? readSecretFile(resolve(s.bearerTokenFile), `${at}.bearerTokenFile`, secretIssues)
    : undefined;
  if (s.bearerTokenFile && !isHttp) issues.push(`${at}.bearerTokenFile: applies to http/https sources only; remove it`);
  if (isHttp && s.after !== undefined) {
    issues.push(`${at}.after: an http(s) index cannot delete or move files; remove it (s3 sources can delete)`);
  }
  let wis2: Wis2Settings | undefined;
  const isWis2 = protocol === 'wis2+mqtt' || protocol === 'wis2+mqtts' || protocol === 'wis2+wss';
  if (isWis2) {
    const topic = wis2TopicOf(s.url);
    if (topic === '')
      issues.push(`${at}.url: give the topic filter after the broker, e.g. wis2+mqtt://broker/origin/a/wis2/+/data/#`);
    else if (!isTopicFilter(topic))
      issues.push(
        `${at}.url: "${topic}" is not an MQTT topic filter (+ and # stand alone between slashes; # comes last)`,
      );
    if (s.after !== undefined) issues.push(`${at}.after: a WIS2 subscription cannot delete or move files; remove it`);
    wis2 = {
      topic,
      clientId: s.wis2?.clientId ?? `poller-${s.name}`,
      protocolVersion: s.wis2?.protocolVersion ?? 5,
      tls: protocol !== 'wis2+mqtt',
      ...(protocol === 'wis2+wss' && { websocket: true }),
      keepMs: s.wis2?.keep ?? 86_400_000,
      sessionExpirySec: Math.round((s.wis2?.sessionExpiry ?? 7 * 86_400_000) / 1000),
      ...(s.wis2?.brokers !== undefined && { brokers: s.wis2.brokers.map((b) => b.replace(/\/+$/, '')) }),
    };
  } else if (s.wis2 !== undefined) issues.push(`${at}.wis2: applies to wis2+mqtt(s) sources only; remove it`);
  const proxy: ProxyOptionResult = readProxyOption(
    s,
    protocol,
    at,
    (file, where) => readSecretFile(resolve(file), where, secretIssues),
    issues,
  );
  let s3: S3Settings | undefined;
  if (protocol === 's3') {
    if (s.after !== undefined && s.after !== 'delete') {
      issues.push(`${at}.after: s3 sources can delete (after: delete) but not move; use after: delete or remove it`);
    }
    s3 = s3Settings(s, url, at, env, resolve, secretIssues, issues);
  }
  return {
    name: s.name,
    enabled: s.enabled,
    protocol,
    host: url.hostname,
    port: url.port ? Number(url.port) : tlsMode === 'implicit' ? 990 : (DEFAULT_PORTS[protocol] ?? 0),
    user: decodeURIComponent(url.username) || (protocol === 'ftp' || protocol === 'ftps' ? 'anonymous' : ''),
    rootPath,
    displayUrl: redactUrl(url.href),
    ...(password !== undefined && { password }),
    ...(privateKey !== undefined && { privateKey }),
    ...(passphrase !== undefined && { passphrase }),
    ...(bearerToken !== undefined && { bearerToken }),
    ...(s3 !== undefined && { s3 }),
    ...(wis2 !== undefined && { wis2 }),
    ...proxy,
    tls: {
      mode: tlsMode,
      insecure: s.insecure,
      ...(ca !== undefined && { ca }),
      ...(s.fingerprint && { fingerprint: s.fingerprint }),
    },
    ...(s.hostKey && { hostKey: s.hostKey }),
    ...(s.knownHosts && { knownHosts: resolve(s.knownHosts) }),
    timezone: s.timezone,
    include: s.include,
    exclude: s.exclude,
    concurrency: s.concurrency,
    maxConnections: s.maxConnections ?? s.concurrency,
    minAgeMs: s.minAge,
    ...(s.maxAge !== undefined && { maxAgeMs: s.maxAge }),
    // Notifications are no listings: nothing is ever missing from one.
    goneAfterListings: isWis2 ? 0 : s.goneAfterListings,
    mirrorDeletes: s.mirrorDeletes,
    // A notification announces a complete file: there is no upload to wait out.
    stableListings: isWis2 ? 1 : s.stableListings,
    settleDelayMs: s.settleDelay,
    maxFilesPerPoll: s.maxFilesPerPoll,
    maxAttempts: s.maxAttempts,
    ...(s.schedule !== undefined && { schedule: s.schedule }),
    ...(s.every !== undefined && { everyMs: s.every }),
    ...(s.expectEvery !== undefined && { expectEveryMs: s.expectEvery }),
    ...(s.expect !== undefined && s.expect.length > 0 && { expect: s.expect }),
    connectTimeoutMs: s.connectTimeout,
    dataTimeoutMs: s.dataTimeout,
    ...(s.wnm !== undefined && { wnm: normaliseWnm(s.wnm, `${at}.wnm`, issues) }),
    ...(s.after !== undefined && {
      after:
        s.after === 'delete'
          ? { action: 'delete' as const }
          : { action: 'move' as const, dir: s.after.move.replace(/^\/+|\/+$/g, '') },
    }),
    ...(s.volumes !== undefined && { volumes: volumeSpecOf(s.volumes) }),
  };
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

/**
 * Bucket, prefix and credentials of an s3:// source: keys from the config, else AWS_* env, else
 * the instance profile; unsigned only with `anonymous: true`.
 */
function s3Settings(
  s: ParsedSource,
  url: URL,
  at: string,
  env: NodeJS.ProcessEnv,
  resolve: (p: string) => string,
  secretIssues: string[] | undefined,
  issues: string[],
): S3Settings {
  const secret = s.secretAccessKeyFile
    ? readSecretFile(resolve(s.secretAccessKeyFile), `${at}.secretAccessKeyFile`, secretIssues)
    : s.secretAccessKey;
  const accessKeyId = s.accessKeyId ?? (secret === undefined ? env['AWS_ACCESS_KEY_ID'] : undefined);
  const secretAccessKey = secret ?? (s.accessKeyId === undefined ? env['AWS_SECRET_ACCESS_KEY'] : undefined);
  const sessionToken = s.accessKeyId === undefined ? env['AWS_SESSION_TOKEN'] : undefined;
  if (!s.anonymous && (accessKeyId === undefined) !== (secretAccessKey === undefined) && secretIssues) {
    issues.push(`${at}: give both accessKeyId and secretAccessKey (or secretAccessKeyFile), or anonymous: true`);
  }
  const hasKeys = accessKeyId !== undefined && secretAccessKey !== undefined;
  // Neither keys nor anonymous: the instance profile, unless the metadata service is switched off.
  const useProfile = !s.anonymous && !hasKeys && accessKeyId === undefined && secretAccessKey === undefined;
  if (useProfile && env['AWS_EC2_METADATA_DISABLED']?.toLowerCase() === 'true') {
    issues.push(
      `${at}: no S3 credentials: give accessKeyId and secretAccessKey(File) (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), anonymous: true for a public bucket, or unset AWS_EC2_METADATA_DISABLED to use the instance profile`,
    );
  }
  return {
    bucket: url.hostname,
    ...(s.endpoint !== undefined && { endpoint: s.endpoint.replace(/\/+$/, '') }),
    region: s.region,
    forcePathStyle: s.forcePathStyle,
    ...(!s.anonymous &&
      accessKeyId !== undefined &&
      secretAccessKey !== undefined && {
        credentials: { accessKeyId, secretAccessKey, ...(sessionToken && { sessionToken }) },
      }),
    ...(useProfile && {
      instanceProfile: env['AWS_EC2_METADATA_SERVICE_ENDPOINT']
        ? { endpoint: env['AWS_EC2_METADATA_SERVICE_ENDPOINT'].replace(/\/+$/, '') }
        : {},
    }),
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
  const sources = c.sources.map((s, i) =>
    normaliseSource(
      s.maxAge === undefined && keep !== undefined ? { ...s, maxAge: keep } : s,
      i,
      baseDir,
      issues,
      needSecrets,
      env,
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
