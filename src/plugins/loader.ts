import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PluginConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { builtinPluginFile } from '../package-paths.js';
import { compileGlobs } from '../util/glob.js';
import { PLUGIN_API_VERSION, type Plugin, type PluginFile, type PluginVolume, type VolumePlugin } from './api.js';
import type { IsolationMode } from './isolation/pool.js';
import { runnableUrl } from './isolation/runnable.js';

/** Built-in plugins shipped in `plugins/<name>/index.ts` (compiled to dist/plugins/<name>/index.js). */
export const BUILTIN_PLUGINS = ['archive', 'bufr', 'exec', 'forward', 'radar-volume'] as const;

export interface LoadedPlugin {
  /** Name in the ledger and logs (config `name`, else the plugin's own). */
  readonly name: string;
  readonly plugin: Plugin | VolumePlugin;
  /** `file` plugins run per landed file, `volume` plugins per radar volume version. */
  readonly kind: 'file' | 'volume';
  readonly options: unknown;
  /** File plugins: whether it wants this file (always false for a volume plugin). */
  readonly matches: (file: PluginFile) => boolean;
  /** Volume plugins: whether it wants this volume (always false for a file plugin). */
  readonly matchesVolume: (volume: PluginVolume) => boolean;
  readonly sources?: readonly string[];
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  /** Runs at once; with `worker` or `process`, the size of the pool. */
  readonly concurrency: number;
  readonly isolate: IsolationMode;
  /** Heap limit of one worker or child, MiB (unused with `isolate: none`). */
  readonly memoryLimitMb: number;
  /** The module a worker or child loads (required unless `isolate` is `none`). */
  readonly moduleUrl?: string;
  /** The config's options as written: a worker validates them again with the plugin's schema. */
  readonly rawOptions?: unknown;
  /** Where it came from, for `poller plugins`. */
  readonly origin: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;
/** Heap of one worker or child unless the plugin or the config says otherwise. */
export const DEFAULT_MEMORY_LIMIT_MB = 512;

function builtinUrl(name: string): URL | undefined {
  const file = builtinPluginFile(name);
  return file === undefined ? undefined : pathToFileURL(file);
}

function resolveSpecifier(use: string, baseDir: string): { url: string; origin: string } {
  if ((BUILTIN_PLUGINS as readonly string[]).includes(use)) {
    const url = builtinUrl(use);
    if (url) return { url: url.href, origin: `built-in ${use}` };
  }
  if (use.startsWith('.') || path.isAbsolute(use)) {
    const file = path.resolve(baseDir, use);
    return { url: pathToFileURL(file).href, origin: file };
  }
  return { url: use, origin: `package ${use}` };
}

/** A package name resolved as this module resolved it, so a worker loads the same file. */
function resolveForHost(url: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) return url;
  try {
    return import.meta.resolve(url);
  } catch {
    return url;
  }
}

function isPlugin(value: unknown): value is Plugin | VolumePlugin {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { name?: unknown }).name === 'string' &&
    typeof (value as { process?: unknown }).process === 'function'
  );
}

export async function loadPlugin(cfg: PluginConfig, index: number, baseDir: string): Promise<LoadedPlugin> {
  const at = `plugins[${index}]`;
  const { url, origin } = resolveSpecifier(cfg.use, baseDir);
  const plugin = await importPlugin(cfg.use, url, origin, at);
  const options = pluginOptions(plugin, cfg.options, at);
  if (plugin.kind !== undefined && plugin.kind !== 'file' && plugin.kind !== 'volume') {
    throw new ConfigError([
      `${at}.use: plugin "${plugin.name}" has kind "${String(plugin.kind)}"; a plugin's kind is file (the default) or volume`,
    ]);
  }
  const kind = plugin.kind === 'volume' ? 'volume' : 'file';
  const isolate = cfg.isolate ?? plugin.isolate ?? 'worker';
  let moduleUrl: string | undefined;
  if (isolate !== 'none') {
    try {
      moduleUrl = runnableUrl(resolveForHost(url));
    } catch (err) {
      throw new ConfigError([`${at}.isolate: ${(err as Error).message}, or set isolate: none`]);
    }
  }
  return {
    name: cfg.name ?? plugin.name,
    plugin,
    kind,
    options,
    ...matchers(cfg.match ?? plugin.match, kind),
    ...(cfg.sources && { sources: cfg.sources }),
    timeoutMs: cfg.timeoutMs ?? plugin.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxAttempts: cfg.maxAttempts,
    concurrency: cfg.concurrency ?? os.availableParallelism(),
    isolate,
    memoryLimitMb: cfg.memoryLimitMb ?? plugin.memoryLimitMb ?? DEFAULT_MEMORY_LIMIT_MB,
    ...(moduleUrl !== undefined && { moduleUrl, rawOptions: cfg.options }),
    origin,
  };
}

/** The module's default export, checked to be a plugin of this API version. */
async function importPlugin(use: string, url: string, origin: string, at: string): Promise<LoadedPlugin['plugin']> {
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ERR_MODULE_NOT_FOUND' ? 'not found' : String((err as Error).message).split('\n')[0];
    throw new ConfigError(
      [
        `${at}.use: cannot load plugin "${use}" from ${origin}: ${why}; use a built-in (${BUILTIN_PLUGINS.join(', ')}), a path or an installed package`,
      ],
      { cause: err },
    );
  }
  const plugin = mod.default;
  if (!isPlugin(plugin)) {
    throw new ConfigError([
      `${at}.use: ${origin} does not default-export a plugin; export default definePlugin({ name, process })`,
    ]);
  }
  if (plugin.apiVersion !== PLUGIN_API_VERSION) {
    throw new ConfigError([
      `${at}.use: plugin "${plugin.name}" was built for plugin API ${String(plugin.apiVersion)}, this poller has ${PLUGIN_API_VERSION}; use definePlugin from poller/plugin of this version`,
    ]);
  }
  return plugin;
}

/** The configured options through the plugin's own schema; one line per problem, by path. */
function pluginOptions(plugin: LoadedPlugin['plugin'], raw: unknown, at: string): unknown {
  if (!plugin.options) return raw;
  const parsed = plugin.options.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(
        (i) =>
          `${at}.options${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${i.message}`,
      ),
    );
  }
  return parsed.data;
}

/** Globs (or a predicate) apply to the remote path of a file, or to the key of a volume. */
function matchers(
  match: PluginConfig['match'] | LoadedPlugin['plugin']['match'],
  kind: 'file' | 'volume',
): Pick<LoadedPlugin, 'matches' | 'matchesVolume'> {
  const compiled =
    typeof match === 'function' || match === undefined
      ? undefined
      : compileGlobs(typeof match === 'string' ? [match] : match);
  const test = (subject: unknown, text: string): boolean => {
    if (typeof match === 'function') return (match as (s: unknown) => boolean)(subject);
    if (match === undefined) return true;
    return compiled ? compiled(text) : true;
  };
  return {
    matches: kind === 'file' ? (file: PluginFile) => test(file, file.remotePath) : () => false,
    matchesVolume: kind === 'volume' ? (volume: PluginVolume) => test(volume, volume.key) : () => false,
  };
}

export async function loadPlugins(cfgs: readonly PluginConfig[], baseDir: string): Promise<LoadedPlugin[]> {
  const loaded: Array<{ index: number; plugin: LoadedPlugin }> = [];
  const issues: string[] = [];
  for (const [i, cfg] of cfgs.entries()) {
    try {
      loaded.push({ index: i, plugin: await loadPlugin(cfg, i, baseDir) });
    } catch (err) {
      if (err instanceof ConfigError) issues.push(...err.issues);
      else throw err;
    }
  }
  const names = new Set<string>();
  for (const { index, plugin } of loaded) {
    if (names.has(plugin.name))
      issues.push(`plugins[${index}].name: two plugins are named "${plugin.name}"; give one a distinct name`);
    names.add(plugin.name);
  }
  if (issues.length) throw new ConfigError(issues);
  return loaded.map((l) => l.plugin);
}
