/**
 * The plugin author's API: the only module a plugin imports (`import { definePlugin } from 'poller/plugin'`).
 * Small and stable on purpose; `PLUGIN_API_VERSION` changes only with a breaking change.
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import { durationSchema } from '../util/duration.js';

export { PermanentError, TransientError } from '../errors.js';

/**
 * A duration option as the config writes it (`1500ms`, `30s`, `5m`, `6h`, `2d`, or a number of
 * milliseconds), parsed to milliseconds: the same syntax as poller's own options.
 *
 * @example
 * options: z.object({ timeout: durationMs().default(30_000) })
 */
export function durationMs() {
  return durationSchema();
}

/** The API version this build of poller implements. The loader rejects plugins built for another. */
export const PLUGIN_API_VERSION = 1;

/** A landed, complete file as a plugin sees it. */
export interface PluginFile {
  /** Absolute path of the landed file. Complete and fsynced; never a partial download. */
  readonly localPath: string;
  /** Path on the source, relative to the source root: `2026/11/23/T_PAGB41_C_LFPW.bufr`. */
  readonly remotePath: string;
  /** The source's name from the config. */
  readonly source: string;
  readonly sizeBytes: number;
  /** Remote modification time, ms since the epoch. */
  readonly mtimeMs: number;
  /** 1 on the first run of this plugin for this file version, 2 on the first retry, ... */
  readonly attempt: number;
}

/** A derived file a plugin produced; recorded in the ledger against the run. */
export interface EmittedOutput {
  path: string;
  kind?: string;
}

/** What `setup` and `teardown` receive. */
export interface PluginSetupContext<Options> {
  /** Child logger bound to the plugin name. */
  readonly log: Logger;
  readonly options: Options;
  /** A private directory for this plugin's own state; created before `setup`. */
  readonly stateDir: string;
  /** Aborts on shutdown. */
  readonly signal: AbortSignal;
}

/** What `process` receives for each file. */
export interface PluginContext<Options> extends PluginSetupContext<Options> {
  /** Aborts on this run's timeout or on shutdown: pass it to anything that waits. */
  readonly signal: AbortSignal;
  readonly attempt: number;
  /** Record a derived output file. */
  emit(output: EmittedOutput): void;
}

/** Which files a plugin wants: globs on the remote path, or a predicate. */
export type PluginMatch = string | readonly string[] | ((file: PluginFile) => boolean);

/** What file and volume plugins have in common. */
export interface PluginDefinitionBase<Schema extends z.ZodType = z.ZodType> {
  /** Unique name, used in config (`use: name`), logs, the ledger and `poller retry --plugin`. */
  name: string;
  /** zod schema for `options` in the config; its output type is `ctx.options`. */
  options?: Schema;
  /** Default per-run timeout; the config's `timeout` overrides it. @default 60_000 */
  timeoutMs?: number;
  /**
   * Where runs happen; the config's `isolate` overrides it. `worker`: a pool of worker threads
   * (the module is loaded once per worker; a spin, a crash or running out of memory costs only
   * that worker). `process`: a pool of child processes (native code, untrusted code, or a plugin
   * that may bring its process down). `none`: in the poller's own thread, for light plugins that
   * only wait on I/O; a synchronous loop there stalls every transfer. @default 'worker'
   */
  isolate?: 'worker' | 'process' | 'none';
  /** Heap limit of one worker or child in MiB; the config's `memoryLimit` overrides it. @default 512 */
  memoryLimitMb?: number;
  /**
   * Once per worker or child process (once per poller with `isolate: none`), before its first
   * file. A throw disables the plugin with a clear error.
   */
  setup?(ctx: PluginSetupContext<z.output<Schema>>): Promise<void> | void;
  /** On shutdown, once per worker or child that ran setup; bounded by a timeout. */
  teardown?(ctx: PluginSetupContext<z.output<Schema>>): Promise<void> | void;
}

/** What a file plugin module's default export is built from. */
export interface PluginDefinition<Schema extends z.ZodType = z.ZodType> extends PluginDefinitionBase<Schema> {
  /** A file plugin (the default): `process` runs once per landed file version. */
  kind?: 'file';
  /** Default match; the config's `match` overrides it. Default: every file. */
  match?: PluginMatch;
  /** Once per (file version, attempt). Throw to fail; a PermanentError is not retried. */
  process(file: PluginFile, ctx: PluginContext<z.output<Schema>>): Promise<void> | void;
}

/** One member file of a volume (one moment of one scan). */
export interface PluginVolumeMember {
  /** The member name taken from the path by the key pattern, e.g. `DBZH`. */
  readonly member: string;
  /** Absolute path of the landed file; complete and fsynced. */
  readonly localPath: string;
  /** Path on the source, relative to the source root. */
  readonly remotePath: string;
  readonly sizeBytes: number;
  /** Remote modification time, ms since the epoch. */
  readonly mtimeMs: number;
}

/** A radar volume as a volume plugin sees it: complete, or declared partial after the quiet time. */
export interface PluginVolume {
  /** The volume key: the group-by fields joined by `_` (`RMA11_0315_01_20251020T152828Z`). */
  readonly key: string;
  /** The source's name from the config. */
  readonly source: string;
  /** 1 for the first version of this key; a reopened volume (a member changed) counts up. */
  readonly version: number;
  /** The pattern's named groups except the member (`{ radar: 'RMA11', time: '...' }`). */
  readonly fields: Readonly<Record<string, string>>;
  /** One file per member, by member name. */
  readonly members: readonly PluginVolumeMember[];
  /** Every expected member is there (or, without an `expect` list, the quiet time passed). */
  readonly complete: boolean;
  /** Declared after the quiet time with some expected members missing. */
  readonly partial: boolean;
  /** Expected members that are not there (empty when complete). */
  readonly missing: readonly string[];
  /** When the first and the last member landed, ms since the epoch. */
  readonly firstMemberMs: number;
  readonly lastMemberMs: number;
  /** 1 on the first run of this plugin for this volume version, 2 on the first retry, ... */
  readonly attempt: number;
}

/** Which volumes a volume plugin wants: globs on the volume key, or a predicate. */
export type VolumeMatch = string | readonly string[] | ((volume: PluginVolume) => boolean);

/** What a volume plugin module's default export is built from. */
export interface VolumePluginDefinition<Schema extends z.ZodType = z.ZodType> extends PluginDefinitionBase<Schema> {
  /** A volume plugin: `process` runs once per volume version, when it is complete or partial. */
  kind: 'volume';
  /** Default match (on the volume key); the config's `match` overrides it. Default: every volume. */
  match?: VolumeMatch;
  /** Once per (volume version, attempt). Throw to fail; a PermanentError is not retried. */
  process(volume: PluginVolume, ctx: PluginContext<z.output<Schema>>): Promise<void> | void;
}

/** A loaded plugin: the definition, frozen, with the API version it was built for. */
export type Plugin<Schema extends z.ZodType = z.ZodType> = Readonly<PluginDefinition<Schema>> & {
  readonly apiVersion: number;
};

/** A loaded volume plugin. */
export type VolumePlugin<Schema extends z.ZodType = z.ZodType> = Readonly<VolumePluginDefinition<Schema>> & {
  readonly apiVersion: number;
};

/**
 * Declare a plugin. An identity function for type inference (`ctx.options` is typed from
 * `options`), plus the API version the loader checks.
 *
 * `kind: 'volume'` declares a volume plugin: `process(volume, ctx)` then runs once per radar
 * volume version (README "Radar volumes").
 *
 * @example
 * export default definePlugin({
 *   name: 'count',
 *   options: z.object({ out: z.string() }),
 *   async process(file, ctx) { ctx.log.info({ bytes: file.sizeBytes }, 'seen'); },
 * });
 */
export function definePlugin<Schema extends z.ZodType = z.ZodType>(
  definition: VolumePluginDefinition<Schema>,
): VolumePlugin<Schema>;
export function definePlugin<Schema extends z.ZodType = z.ZodType>(
  definition: PluginDefinition<Schema>,
): Plugin<Schema>;
export function definePlugin(definition: PluginDefinition | VolumePluginDefinition): Plugin | VolumePlugin {
  return Object.freeze({ ...definition, apiVersion: PLUGIN_API_VERSION });
}
