/**
 * A source kind, described once: its URL schemes, the options only it takes (zod, documented),
 * its defaults, how its settings are read from a validated source entry, and how its
 * implementation is imported. The config schema and normaliser, the docs table of schemes and
 * options, and the source factory are all built from these (src/sources/index.ts holds the list);
 * a new protocol is a new folder with a `descriptor.ts`.
 */
import { z } from 'zod';
import { durationSchema } from '../util/duration.js';
import type { HostBudget } from './ftp/host-budget.js';
import type { Source, SourceConnectOptions, SourceProtocol, SourceSettings } from './source.js';

/** What sources of one process share: the per-host connection budget (`maxConnections`). */
export interface SharedSourceState {
  hostBudget: HostBudget;
  /** The process's private state directory (WIS2 journals). */
  stateDir?: string;
}

export type SourceFactory = (opts: SourceConnectOptions, shared: SharedSourceState) => Source;

/** What a kind gets to read its settings from one source entry of the config. */
export interface KindContext<Options> {
  /** The source entry, validated: the kind's own options among the common ones. */
  readonly options: Options & { readonly name: string; readonly url: string };
  readonly url: URL;
  readonly protocol: SourceProtocol;
  /** Where the entry is, for messages: `sources[2]`. */
  readonly at: string;
  readonly env: NodeJS.ProcessEnv;
  /** The command connects: secrets must resolve (else only their syntax is checked). */
  readonly needSecrets: boolean;
  /** A path of the config, absolute (relative ones are from the config's directory). */
  resolve(file: string): string;
  /** The text of a secret file; an unreadable one is an issue (when secrets are needed) and undefined. */
  readSecret(file: string, where: string): string | undefined;
  /** Add one problem, `<at>.<option>: what is wrong; how to fix it`. */
  issue(line: string): void;
}

/** The settings a kind adds to the common ones. */
export type KindSettings = Partial<Omit<SourceSettings, 'name' | 'protocol' | 'host' | 'port' | 'user' | 'rootPath'>>;

export interface SourceKind<Shape extends z.ZodRawShape = z.ZodRawShape> {
  /** URL schemes (without the colon) this kind serves. */
  readonly schemes: readonly SourceProtocol[];
  /** How messages name the kind: `ftp/ftps`. */
  readonly label: string;
  /** Options only this kind takes; another kind's source that sets one is refused with a line naming this kind. */
  readonly options: Shape;
  /** The port when the URL gives none. */
  defaultPort(protocol: SourceProtocol, options: z.output<z.ZodObject<Shape>>): number;
  /** The user when the URL gives none. @default '' */
  readonly defaultUser?: string;
  /** The root directory from the URL. @default the decoded URL path, or `/` */
  rootPath?(url: URL): string;
  /** Files arrive complete (announced, not uploaded): no listings to wait out. */
  readonly announcesComplete?: boolean;
  /** What `after:` can do here; a refusal is the text after `<at>.after: `. @default both */
  readonly after?: { readonly delete: boolean; readonly move: boolean; readonly refusal: string };
  /** FTP's TLS mode (`tls:`); other kinds have none. */
  tlsMode?(protocol: SourceProtocol, options: z.output<z.ZodObject<Shape>>): 'none' | 'explicit' | 'implicit';
  /** The kind's own settings, checked; problems go to `ctx.issue`. */
  settings?(ctx: KindContext<z.output<z.ZodObject<Shape>>>): KindSettings;
  /** Import the implementation (and its client library) only when a config uses the kind. */
  load(): Promise<SourceFactory>;
}

/** Declare a kind; the identity, typed, so `options` and the callbacks agree. */
export function defineSourceKind<Shape extends z.ZodRawShape>(kind: SourceKind<Shape>): SourceKind<Shape> {
  return kind;
}

/**
 * Options every kind takes: credentials, TLS verification, timeouts, connection budget and the
 * proxy. One place, so an option shared by the network kinds is added here once.
 */
export const COMMON_SOURCE_OPTIONS = {
  password: z.string().optional().describe('Password; write ${ENV_VAR} rather than the secret itself.'),
  passwordFile: z.string().optional().describe('File holding the password (e.g. a systemd credential).'),
  maxConnections: z
    .number()
    .int()
    .min(1)
    .max(64)
    .optional()
    .describe('Connections to this host; default: concurrency.'),
  ca: z.string().optional().describe('PEM file of the CA to trust.'),
  fingerprint: z.string().optional().describe('Pin the server certificate by its SHA-256 fingerprint.'),
  insecure: z.boolean().default(false).describe('Skip TLS / host key verification. Logged at every start.'),
  timezone: z.string().default('UTC').describe('IANA zone of the times a server shows in LIST.'),
  connectTimeout: durationSchema().default(15_000).describe('Connection timeout.'),
  dataTimeout: durationSchema().default(30_000).describe('Inactivity timeout for replies and data.'),
  proxy: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Proxy for this source: http://host:port (CONNECT), socks5://host:port, socks5h://host:port, or none; default: the environment (HTTPS_PROXY, ALL_PROXY, NO_PROXY... as curl reads them).',
    ),
  proxyCredentialsFile: z
    .string()
    .optional()
    .describe("File holding the proxy credentials as user:password (for `proxy` or the environment's proxy)."),
} as const;
