/**
 * The configuration schema: shape, defaults and docs in one place. Durations are written as
 * `20s`, `5m`, `6h` in the file and are milliseconds (`...Ms`) everywhere after this module.
 */
import cron from 'node-cron';
import { z } from 'zod';
import { SOURCE_SCHEMES, sourceOptionsShape } from '../sources/index.js';
import { durationSchema } from '../util/duration.js';
import { isPostgresConnInfo, parsePgConnInfo } from '../util/postgres-conninfo.js';
import { compileKeyPattern } from '../volumes/key-pattern.js';
import { expectSchema } from './expect.js';
import { sizeMibSchema } from './size.js';

const duration = (what: string) => durationSchema().describe(what);

const globList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .describe('One glob or a list of globs (minimatch) on the path relative to the source root.');

const SUPPORTED_SCHEMES = SOURCE_SCHEMES.map((s) => `${s}:`);
/** `ftp, ftps, … or wis2+mqtts`. */
const SCHEME_LIST = `${SOURCE_SCHEMES.slice(0, -1).join(', ')} or ${SOURCE_SCHEMES.at(-1)}`;

const sourceUrl = z.string().superRefine((v, ctx) => {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: `"${v.replace(/\/\/[^@/]*@/, '//***@')}" is not a URL; write e.g. ftp://user@host/path`,
    });
    return;
  }
  if (!SUPPORTED_SCHEMES.includes(url.protocol)) {
    ctx.addIssue({
      code: 'custom',
      message: `scheme "${url.protocol.replace(':', '')}" is not supported; use ${SCHEME_LIST}`,
    });
  }
  if (url.password) {
    ctx.addIssue({
      code: 'custom',
      message:
        'the URL contains a password; move it to `password: ${ENV_VAR}` or `passwordFile` so it stays out of logs and the process list',
    });
  }
});

/** A source name becomes a directory under the landing root and a ledger key. */
const sourceName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    'use letters, digits, ".", "_" and "-" (at most 64), starting with a letter or digit',
  );

/** `volumes:` in a source: how its files group into radar volumes (README "Radar volumes"). */
export const volumesSchema = z
  .strictObject({
    pattern: z
      .string()
      .min(1)
      .describe('Regular expression with named groups, matched on the remote path relative to the source root.'),
    member: z.string().min(1).default('moment').describe('The named group that names a member (e.g. the moment).'),
    groupBy: z
      .array(z.string().min(1))
      .optional()
      .describe('Named groups that identify a volume, in key order; default: every group but the member.'),
    expect: z.array(z.string().min(1)).default([]).describe('Members of a complete volume, e.g. [DBZH, VRAD, ZDR].'),
    minimum: z.number().int().min(1).optional().describe('Fewest members for a partial volume; default 1.'),
    completeAfter: duration('Quiet time after the last member before the volume is declared partial.').optional(),
    reopenLate: z
      .boolean()
      .default(false)
      .describe('A member arriving after the volume was processed reopens it as a new version.'),
  })
  .superRefine((v, ctx) => {
    for (const problem of compileKeyPattern(v.pattern, v.member, v.groupBy).problems) {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: problem });
    }
    if (v.minimum !== undefined && v.expect.length > 0 && v.minimum > v.expect.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['minimum'],
        message: `minimum ${v.minimum} is more than the ${v.expect.length} expected members; lower it or add members`,
      });
    }
    if (v.expect.length === 0 && v.completeAfter === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['completeAfter'],
        message: 'without an `expect` list a volume is complete only after a quiet time; set completeAfter (e.g. 3m)',
      });
    }
  });

export const sourceSchema = z
  .strictObject({
    name: sourceName.describe('Unique name: the landing subdirectory and the ledger key.'),
    url: sourceUrl.describe(
      'ftp://[user@]host[:port]/path, ftps://..., sftp://user@host/path, file:///dir, http(s)://host/dir/, s3://bucket/prefix or wis2+mqtt(s)://[user@]broker[:port]/<topic filter> (wis2+wss://: MQTT over WebSockets, port 443)',
    ),
    enabled: z.boolean().default(true),
    ...sourceOptionsShape(),
    include: globList.default(['**']),
    exclude: globList.default([]),
    concurrency: z.number().int().min(1).max(64).default(4).describe('Parallel downloads for this source.'),
    minAge: duration('A file must be at least this old (by its mtime) before it is fetched.').default(0),
    maxAge: duration('Files older than this are ignored.').optional(),
    goneAfterListings: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(3)
      .describe(
        'Complete listings in a row without a file before its version is recorded as gone (removed upstream); 0 never.',
      ),
    mirrorDeletes: z
      .boolean()
      .default(false)
      .describe(
        'Remove the landed copy of a file gone upstream or deleted by a WIS2 notification (never anything outside the landing tree).',
      ),
    stableListings: z
      .number()
      .int()
      .min(1)
      .max(10)
      .default(2)
      .describe('Listings with unchanged size+mtime before a fetch.'),
    settleDelay: duration('run-once: pause between the two listings of the settle check.').default(2000),
    maxFilesPerPoll: z.number().int().min(1).default(1000),
    maxAttempts: z.number().int().min(1).max(100).default(5),
    schedule: z
      .string()
      .refine((v) => cron.validate(v), 'invalid cron expression; e.g. "*/2 * * * *"')
      .optional(),
    every: duration('Poll interval, instead of a cron schedule.').optional(),
    expectEvery: duration(
      'A new file is expected at least this often: older makes the source late (status page, poller_source_late).',
    ).optional(),
    expect: expectSchema
      .optional()
      .describe(
        'Products (a radar, a bulletin) that must keep arriving, each with a cadence and a grace: lateness per product.',
      ),
    after: z
      .union([z.literal('delete'), z.strictObject({ move: z.string().min(1) })])
      .optional()
      .describe(
        'After every plugin succeeded and the ledger committed: delete the remote file, or move it into a directory.',
      ),
    volumes: volumesSchema.optional().describe("Group this source's files into radar volumes."),
    wnm: z
      .strictObject({
        geometry: z
          .union([
            z.strictObject({ type: z.literal('Point'), coordinates: z.array(z.number()).min(2).max(3) }),
            z.strictObject({
              type: z.literal('Polygon'),
              coordinates: z.array(z.array(z.array(z.number()).min(2).max(3)).min(4)),
            }),
            z.null(),
          ])
          .default(null)
          .describe('GeoJSON geometry of the data, e.g. the radar site as a Point [lon, lat].'),
        datetimePattern: z
          .string()
          .optional()
          .describe(
            'Regular expression on the remote path with named groups Y, m, d, H, M (S optional) giving the data time.',
          ),
        metadataId: z.string().optional().describe('WCMP2 record id; default urn:wmo:md:<centreId>:<source>.'),
        mediaType: z.string().optional().describe('Media type of the files; default from the extension.'),
        topics: z
          .array(
            z.strictObject({
              match: globList.optional().describe('Globs on the remote path (volumes: on the volume key).'),
              mediaType: z.string().optional().describe('Only files of this media type (application/bufr, ...).'),
              volumes: z.boolean().optional().describe('true: only volume notifications; false: only files.'),
              topic: z.string().min(1).describe('WIS2 topic; {centreId} {source} {dirs} fill in.'),
            }),
          )
          .optional()
          .describe("Topic by rule: the first rule that matches gives a WIS2 notification's topic, else the sink's."),
      })
      .optional()
      .describe('WIS2 Notification Message properties of this source.'),
  })
  .superRefine((s, ctx) => {
    if (s.password !== undefined && s.passwordFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'give password or passwordFile, not both' });
    }
    if (s.schedule !== undefined && s.every !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['schedule'], message: 'give schedule or every, not both' });
    }
    try {
      new Intl.DateTimeFormat('en', { timeZone: s.timezone });
    } catch {
      ctx.addIssue({
        code: 'custom',
        path: ['timezone'],
        message: `unknown timezone "${s.timezone}"; use an IANA name like Europe/Paris`,
      });
    }
  });

export const pluginSchema = z.strictObject({
  use: z.string().min(1).describe('A built-in plugin name, a path (./plugins/mine.js) or a package name.'),
  name: z.string().optional().describe("Name in the ledger and logs; default: the plugin's own name."),
  match: globList
    .optional()
    .describe("Globs on the remote path (volume plugins: on the volume key); default: the plugin's own match."),
  sources: z.array(z.string()).optional().describe('Only files of these sources; default: all.'),
  options: z.record(z.string(), z.unknown()).default({}),
  timeout: duration('Per-file timeout of one run.').optional(),
  maxAttempts: z.number().int().min(1).max(100).default(5),
  concurrency: z
    .number()
    .int()
    .min(1)
    .max(64)
    .optional()
    .describe('Runs at once (with isolate worker or process: the pool size); default: the number of cores.'),
  isolate: z
    .enum(['worker', 'process', 'none'])
    .optional()
    .describe(
      "Where runs happen: worker threads, child processes, or the poller's own thread; default: the plugin's choice, else worker.",
    ),
  memoryLimit: sizeMibSchema(
    "Heap limit of one worker or child (512MiB, 1GiB); default: the plugin's, else 512MiB.",
    16,
  ).optional(),
});

export const EVENT_KIND_NAMES = [
  'fetched',
  'processed',
  'failed',
  'quarantined',
  'output',
  'gone',
  'volume-complete',
  'volume-partial',
  'volume-processed',
  'volume-failed',
  'volume-quarantined',
  'volume-output',
  'late',
  'on-time',
] as const;

export const sinkSchema = z
  .strictObject({
    name: sourceName.describe('Unique name: the outbox key of this sink.'),
    type: z.enum(['mqtt', 'nats', 'amqp', 'file', 'webhook']),
    url: z
      .string()
      .min(1)
      .describe('mqtt(s)://host:port, nats://host:port, amqp(s)://host:port/vhost, a file path, or http(s)://...'),
    kinds: z.array(z.enum(EVENT_KIND_NAMES)).min(1).default(['fetched', 'failed', 'quarantined']),
    sources: z.array(z.string()).optional().describe('Only events of these sources; default all.'),
    topic: z.string().optional().describe('Topic (subject, routing key) of data events; {centreId} {source} {dirs}.'),
    lifecycleTopic: z.string().optional().describe('Topic of lifecycle events; {centreId} {source} {kind} {dirs}.'),
    format: z.enum(['wnm', 'sr3-v03']).default('wnm').describe('Data events: WIS2 Notification Message, or sr3 v03.'),
    user: z.string().optional(),
    password: z.string().optional(),
    passwordFile: z.string().optional().describe('File holding the broker password.'),
    clientId: z.string().optional().describe('MQTT client id; default poller-<sink>-<host> (stable across restarts).'),
    mqttVersion: z
      .union([z.literal(5), z.literal(4)])
      .optional()
      .describe('MQTT protocol; default 5, then 3.1.1.'),
    ca: z.string().optional().describe('PEM file of the CA that signs the broker certificate.'),
    insecure: z.boolean().default(false),
    exchange: z.string().default('xpublic').describe('AMQP topic exchange.'),
    stream: z.string().default('POLLER').describe('NATS JetStream stream, created when missing.'),
    publicBaseUrl: z.string().optional().describe('WNM link base: href = <publicBaseUrl>/<source>/<path>.'),
    inlineContent: z.boolean().default(false).describe('Embed files whose base64 is <= 4096 bytes in the WNM.'),
    batch: z.number().int().min(1).max(10_000).default(100),
    inFlight: z.number().int().min(1).max(10_000).default(64).describe('Unacknowledged messages at once.'),
    lagAlert: duration('Health says degraded when the oldest unsent event is older than this.').default(60_000),
    timeout: duration('A publish not acknowledged within this is retried.').default(10_000),
  })
  .superRefine((s, ctx) => {
    if (s.password !== undefined && s.passwordFile !== undefined)
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'give password or passwordFile, not both' });
    if (s.format === 'sr3-v03' && s.type !== 'amqp' && s.type !== 'mqtt')
      ctx.addIssue({ code: 'custom', path: ['format'], message: 'sr3-v03 is for amqp (or mqtt) sinks' });
    if (s.type !== 'file' && /\/\/[^/@]*:[^/@]*@/.test(s.url))
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: 'the URL contains a password; move it to `passwordFile` so it stays out of logs',
      });
  });

export const eventsSchema = z.strictObject({
  centreId: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*[a-z0-9]$/, 'a WIS2 centre id: lower case, digits and "-", e.g. fr-meteofrance')
    .describe('WIS2 centre id: in data_id and the default topic.'),
  retention: duration('Sent events are deleted this long after their acknowledgement.').default(7 * 86_400_000),
  topicHierarchy: z
    .string()
    .optional()
    .describe(
      'A copy of the WIS2 Topic Hierarchy (github.com/wmo-im/wis2-topic-hierarchy): topics are checked against it.',
    ),
  sinks: z.array(sinkSchema).min(1, 'add at least one sink'),
});

/** True for a ledger given as a PostgreSQL connection string rather than a SQLite file. */
export function isPostgresUrl(v: string): boolean {
  return isPostgresConnInfo(v);
}

/**
 * A PostgreSQL connection string without a password (it goes in passwordFile, PGPASSWORD or
 * PGPASSFILE): a URL, or libpq's keyword/value form, with one host or several.
 */
const postgresUrl = z.string().superRefine((v, ctx) => {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(v)?.[1];
  if (scheme !== undefined && !isPostgresUrl(v)) {
    ctx.addIssue({ code: 'custom', message: `scheme "${scheme}" is not postgres or postgresql` });
    return;
  }
  let info: ReturnType<typeof parsePgConnInfo>;
  let url: URL;
  try {
    info = parsePgConnInfo(v);
    url = new URL(info.baseUrl);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return;
  }
  if (url.password || url.searchParams.has('password'))
    ctx.addIssue({
      code: 'custom',
      message:
        'the URL contains a password; move it to `ledger.passwordFile` (or PGPASSWORD / PGPASSFILE) so it stays out of logs and the process list',
    });
  if (url.pathname.length <= 1)
    ctx.addIssue({ code: 'custom', message: 'name the database: postgres://user@host/database' });
});

/** `ledger:` as an object: a PostgreSQL ledger with its password and connection budget. */
export const postgresLedgerSchema = z
  .strictObject({
    url: postgresUrl.describe(
      'postgres://user@host[:port][,host2[:port]]/database (sslmode, target_session_attrs and other parameters allowed), or libpq keyword/value form.',
    ),
    password: z.string().optional().describe('Password; write ${ENV_VAR} rather than the secret itself.'),
    passwordFile: z.string().optional().describe('File holding the password (e.g. a systemd credential).'),
    pool: z.number().int().min(1).max(64).default(4).describe('Connections this poller holds at most.'),
  })
  .superRefine((s, ctx) => {
    if (s.password !== undefined && s.passwordFile !== undefined)
      ctx.addIssue({ code: 'custom', path: ['password'], message: 'give password or passwordFile, not both' });
  });

export const configSchema = z
  .strictObject({
    landing: z.string().min(1).describe('Landing directory: complete files only, as landing/<source>/<remote path>.'),
    ledger: z
      .union([z.string().min(1), postgresLedgerSchema])
      .describe(
        'SQLite ledger file, or a PostgreSQL URL (postgres://user@host/db; several hosts for failover: postgres://user@a,b/db) shared by several pollers; the object form adds passwordFile and pool.',
      ),
    instance: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, 'use letters, digits, ".", "_", ":", "@" and "-" (at most 128)')
      .optional()
      .describe('This poller among several on one PostgreSQL ledger; default host:pid.'),
    landingMode: z
      .enum(['shared', 'per-host'])
      .default('shared')
      .describe(
        'PostgreSQL ledger: shared (every instance sees one landing root, e.g. NFS) or per-host (each instance its own landing:, a local disk or a pod volume; set instance: so a restart keeps its files).',
      ),
    leaseTime: duration(
      'PostgreSQL ledger: an instance silent this long is taken for dead and its claims are taken over.',
    ).default(30_000),
    stateDir: z.string().optional().describe("Plugins' private state; default: <landing>/.state"),
    log: z
      .strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
      .default({ level: 'info' }),
    http: z
      .strictObject({
        host: z
          .string()
          .default('127.0.0.1')
          .describe('Address to bind; the default keeps the page and the metrics on this host.'),
        port: z.number().int().min(0).max(65535),
        auth: z
          .strictObject({
            user: z.string().min(1).optional().describe('Basic auth user name (with passwordFile).'),
            passwordFile: z.string().optional().describe('File holding the basic auth password.'),
            tokenFile: z.string().optional().describe('File holding a bearer token (Authorization: Bearer).'),
          })
          .superRefine((a, ctx) => {
            if ((a.user === undefined) !== (a.passwordFile === undefined))
              ctx.addIssue({ code: 'custom', message: 'give both user and passwordFile for basic auth' });
            if (a.user === undefined && a.passwordFile === undefined && a.tokenFile === undefined)
              ctx.addIssue({ code: 'custom', message: 'give user + passwordFile, tokenFile, or both' });
          })
          .optional()
          .describe('Everything but /healthz and /readyz asks for these credentials.'),
        refresh: duration('How often the status page polls /api/status.').default(5000),
      })
      .optional(),
    maxTransfers: z.number().int().min(1).max(256).default(16).describe('Global cap on concurrent transfers.'),
    retryBase: duration('First retry delay; doubles per attempt, with jitter.').default(30_000),
    retryMax: duration('Longest retry delay.').default(3_600_000),
    retention: z
      .strictObject({
        keep: duration(
          'Window for sources without maxAge: older files are ignored in listings (as maxAge) and their done rows pruned.',
        ).optional(),
        quarantined: duration('Quarantined versions are kept this long after giving up, for `poller retry`.').default(
          7 * 86_400_000,
        ),
        every: duration('How often the daemon prunes in the background.').default(600_000),
      })
      .default({ quarantined: 7 * 86_400_000, every: 600_000 }),
    sources: z.array(sourceSchema).min(1, 'add at least one source'),
    plugins: z.array(pluginSchema).default([]),
    events: eventsSchema.optional().describe('Sinks that receive an event per landed, processed or failed file.'),
  })
  .superRefine((c, ctx) => {
    if (typeof c.ledger === 'string' && isPostgresUrl(c.ledger)) {
      const r = postgresUrl.safeParse(c.ledger);
      for (const issue of r.error?.issues ?? [])
        ctx.addIssue({ code: 'custom', path: ['ledger'], message: issue.message });
    }
    const sinkNames = new Set<string>();
    c.events?.sinks.forEach((s, i) => {
      if (sinkNames.has(s.name))
        ctx.addIssue({
          code: 'custom',
          path: ['events', 'sinks', i, 'name'],
          message: `duplicate sink name "${s.name}"`,
        });
      sinkNames.add(s.name);
      for (const name of s.sources ?? [])
        if (!c.sources.some((src) => src.name === name))
          ctx.addIssue({
            code: 'custom',
            path: ['events', 'sinks', i, 'sources'],
            message: `no source named "${name}"`,
          });
    });
    const seen = new Set<string>();
    c.sources.forEach((s, i) => {
      if (seen.has(s.name))
        ctx.addIssue({ code: 'custom', path: ['sources', i, 'name'], message: `duplicate source name "${s.name}"` });
      seen.add(s.name);
    });
  });

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type ParsedSource = z.output<typeof sourceSchema>;
export type ParsedPlugin = z.output<typeof pluginSchema>;
export type ParsedVolumes = z.output<typeof volumesSchema>;
export type ParsedSink = z.output<typeof sinkSchema>;
