/**
 * The configuration schema: shape, defaults and docs in one place. Durations are written as
 * `20s`, `5m`, `6h` in the file and are milliseconds (`...Ms`) everywhere after this module.
 */
import cron from 'node-cron';
import { z } from 'zod';
import { durationSchema } from './duration.js';
import { sizeMibSchema } from './size.js';

const duration = (what: string) => durationSchema().describe(what);

const globList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .describe('One glob or a list of globs (minimatch) on the path relative to the source root.');

const SUPPORTED_SCHEMES = ['ftp:', 'ftps:', 'sftp:', 'file:'];

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
      message: `scheme "${url.protocol.replace(':', '')}" is not supported; use ftp, ftps, sftp or file`,
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

export const sourceSchema = z
  .strictObject({
    name: sourceName.describe('Unique name: the landing subdirectory and the ledger key.'),
    url: sourceUrl.describe('ftp://[user@]host[:port]/path, ftps://..., sftp://user@host/path or file:///dir'),
    enabled: z.boolean().default(true),
    password: z.string().optional().describe('Password; write ${ENV_VAR} rather than the secret itself.'),
    passwordFile: z.string().optional().describe('File holding the password (e.g. a systemd credential).'),
    privateKeyFile: z.string().optional().describe('SFTP: private key file.'),
    passphrase: z.string().optional(),
    passphraseFile: z.string().optional(),
    include: globList.default(['**']),
    exclude: globList.default([]),
    concurrency: z.number().int().min(1).max(64).default(4).describe('Parallel downloads for this source.'),
    maxConnections: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .describe('Connections to this host; default: concurrency.'),
    minAge: duration('A file must be at least this old (by its mtime) before it is fetched.').default(0),
    maxAge: duration('Files older than this are ignored.').optional(),
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
    tls: z.enum(['none', 'explicit', 'implicit']).optional().describe('FTPS mode; ftps:// implies explicit.'),
    ca: z.string().optional().describe('FTPS: PEM file of the CA to trust.'),
    fingerprint: z.string().optional().describe('FTPS: pin the server certificate by its SHA-256 fingerprint.'),
    insecure: z.boolean().default(false).describe('Skip TLS / host key verification. Logged at every start.'),
    hostKey: z.string().optional().describe('SFTP: SHA256:... fingerprint of the server host key.'),
    knownHosts: z.string().optional().describe('SFTP: a known_hosts file.'),
    timezone: z.string().default('UTC').describe('IANA zone of the times a server shows in LIST.'),
    after: z
      .union([z.literal('delete'), z.strictObject({ move: z.string().min(1) })])
      .optional()
      .describe(
        'After every plugin succeeded and the ledger committed: delete the remote file, or move it into a directory.',
      ),
    connectTimeout: duration('Connection timeout.').default(15_000),
    dataTimeout: duration('Inactivity timeout for replies and data.').default(30_000),
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
  match: globList.optional().describe("Globs on the remote path; default: the plugin's own match."),
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

export const configSchema = z
  .strictObject({
    landing: z.string().min(1).describe('Landing directory: complete files only, as landing/<source>/<remote path>.'),
    ledger: z.string().min(1).describe('SQLite ledger file.'),
    stateDir: z.string().optional().describe("Plugins' private state; default: <landing>/.state"),
    log: z
      .strictObject({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
      .default({ level: 'info' }),
    http: z
      .strictObject({ host: z.string().default('127.0.0.1'), port: z.number().int().min(0).max(65535) })
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
  })
  .superRefine((c, ctx) => {
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
