/**
 * The composition root: builds the logger, ledger, plugins, runner and sources from a config,
 * and releases them in reverse order. Nothing else constructs these.
 */
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pLimit, { type LimitFunction } from 'p-limit';
import type { LevelWithSilent, Logger } from 'pino';
import { type Config, loadConfig, type SourceConfig } from '../config/load.js';
import type { CycleDeps, CycleEvents } from '../engine/cycle.js';
import { startInstanceHeartbeat } from '../engine/instance-heartbeat.js';
import { isOwnerGone, newOwnerId } from '../engine/owner.js';
import { volumeGatherer } from '../engine/volume-gather.js';
import { errorCode } from '../errors.js';
import { outboxRoutes, wantsIntegrity } from '../events/outbox.js';
import { assertWis2Config } from '../events/wis2-config.js';
import { hasInstanceRegistry, type Ledger } from '../ledger/ledger.js';
import { PostgresLedger } from '../ledger/postgres/postgres-ledger.js';
import { SqliteLedger } from '../ledger/sqlite/sqlite-ledger.js';
import { createLogger } from '../observe/logger.js';
import { loadPlugins } from '../plugins/loader.js';
import { PluginRunner, type RunnerObserver } from '../plugins/runner.js';
import { type DateWindow, splitDateTemplate, startDirsFor } from '../sources/date-template.js';
import { createHostBudget } from '../sources/ftp/host-budget.js';
import { loadSourceKinds, openSource } from '../sources/index.js';
import type { Source } from '../sources/source.js';
import { sweepPartials } from '../transfer/landing.js';
import { UsageError } from './output.js';
import { Releasers } from './releasers.js';

export interface App {
  config: Config;
  log: Logger;
  ledger: Ledger;
  owner: string;
  shutdown: AbortController;
  /** Open (once) and return the Source of a configured source. */
  source(src: SourceConfig): Source;
  runner(): Promise<PluginRunner>;
  /** The global cap on transfers, shared by every cycle of this process. */
  transferLimit: LimitFunction;
  /** A new Source, not cached: the daemon owns it and closes it (config reload). */
  openSource(src: SourceConfig): Source;
  /** Load and set up the plugins of `config`; the caller tears the runner down (config reload). */
  openRunner(config: Config, observer?: RunnerObserver): Promise<PluginRunner>;
  /** Connections of the host of an FTP source currently in use; undefined for other protocols. */
  connectionsInUse(src: SourceConfig): number | undefined;
  cycleDeps(events?: CycleEvents): Promise<CycleDeps>;
  close(): Promise<void>;
}

export interface OpenAppOptions {
  configPath: string;
  logLevel?: LevelWithSilent;
  /** Logs to stderr (commands whose stdout is their answer) or stdout (the daemon). */
  logTo: 'stdout' | 'stderr';
  /**
   * How the command uses the ledger: `write` (default), `read` (status, files, why: read-only,
   * the ledger must exist), `probe` (check: read-only, an empty in-memory one when none exists).
   */
  ledgerMode?: 'write' | 'read' | 'probe';
  /** The command connects to sources: unresolved secrets are errors. @default true */
  needSecrets?: boolean;
}

/**
 * Opens the app for a command that answers on stdout (logs to stderr, `warn` unless
 * `--log-level` says otherwise), runs `fn` and closes the app however `fn` ends.
 */
export async function withCommandApp<T>(
  args: { config: string; logLevel?: LevelWithSilent | undefined },
  opts: Pick<OpenAppOptions, 'ledgerMode' | 'needSecrets'>,
  fn: (app: App) => Promise<T>,
): Promise<T> {
  const app = await openApp({ configPath: args.config, logTo: 'stderr', logLevel: args.logLevel ?? 'warn', ...opts });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

export async function openApp(opts: OpenAppOptions): Promise<App> {
  const config = loadConfig(opts.configPath, process.env, { needSecrets: opts.needSecrets ?? true });
  assertWis2Config(config);
  const [{ pino }] = await Promise.all([import('pino'), loadSourceKinds(config.sources)]);
  const log = createLogger({
    level: opts.logLevel ?? (config.logLevel as LevelWithSilent),
    // Asynchronous writes: a synchronous line per file costs more than the file's own syscalls.
    // close() flushes; the process ends only after the stream has drained.
    destination: pino.destination({ fd: opts.logTo === 'stderr' ? 2 : 1, sync: false }),
  }).child({ host: os.hostname() });
  const releasers = new Releasers(log);
  const mode = opts.ledgerMode ?? 'write';
  const ledger = await openLedger(config, mode, log);
  releasers.add(() => ledger.close());
  try {
    // Transitions write outbox rows only for configured sinks: without `events:` the outbox costs nothing.
    if (config.events) ledger.setOutbox(outboxRoutes(config));
    warnInsecureSources(config, log);
    const app = assembleApp(config, log, ledger, releasers);
    if (mode === 'write') await takeOver(app, releasers);
    return app;
  } catch (err) {
    await releasers.release();
    throw err;
  }
}

function warnInsecureSources(config: Config, log: Logger): void {
  for (const s of config.sources) {
    if (s.tls.insecure)
      log.warn(
        { event: 'source.insecure', source: s.name },
        `${s.name}: certificate / host key verification is OFF (insecure: true)`,
      );
  }
}

/** The App over an open ledger; `close()` aborts, closes the cached sources, then runs `releasers`. */
function assembleApp(config: Config, log: Logger, ledger: Ledger, releasers: Releasers): App {
  const owner = newOwnerId();
  const shutdown = new AbortController();
  const sources = new Map<string, Source>();
  let runner: Promise<PluginRunner> | undefined;
  const transferLimit = pLimit(config.maxTransfers);
  const shared = { hostBudget: createHostBudget(), stateDir: config.stateDir };
  const app: App = {
    config,
    log,
    ledger,
    owner,
    shutdown,
    transferLimit,
    source(src) {
      let s = sources.get(src.name);
      if (!s) {
        s = app.openSource(src);
        sources.set(src.name, s);
      }
      return s;
    },
    openSource: (src) => openSource(prepareSource(src), log.child({ source: src.name }), shared),
    openRunner: (cfg, observer) => openRunner(cfg, log, shutdown.signal, observer),
    connectionsInUse(src) {
      return src.protocol === 'ftp' || src.protocol === 'ftps'
        ? shared.hostBudget.inUse(`${src.host}:${src.port}`)
        : undefined;
    },
    runner() {
      runner ??= app.openRunner(config).then((r) => {
        releasers.add(() => r.teardown());
        return r;
      });
      return runner;
    },
    async cycleDeps(events) {
      return {
        ledger,
        runner: await app.runner(),
        log,
        owner,
        landingRoot: config.landing,
        transferLimit,
        retryBaseMs: config.retryBaseMs,
        retryMaxMs: config.retryMaxMs,
        listerLeaseMs: config.leaseTimeMs,
        ...(wantsIntegrity(config) && { hashLanded: true }),
        ...(gathersVolumes(config) && {
          gatherVolume: volumeGatherer(config.landing, (name) => {
            const src = config.sources.find((s) => s.name === name);
            return src && app.source(src);
          }),
        }),
        ...(events && { events }),
      };
    },
    async close() {
      shutdown.abort(new Error('shutting down'));
      for (const s of sources.values()) await s.close().catch(() => undefined);
      await releasers.release();
      log.flush?.();
    },
  };
  return app;
}

async function openRunner(
  cfg: Config,
  log: Logger,
  shutdownSignal: AbortSignal,
  observer: RunnerObserver | undefined,
): Promise<PluginRunner> {
  const plugins = await loadPlugins(cfg.plugins, cfg.baseDir);
  const r = new PluginRunner({ plugins, log, stateDir: cfg.stateDir, shutdownSignal, ...(observer && { observer }) });
  await r.setup();
  warnUnusedVolumePlugins(cfg, plugins, log);
  return r;
}

/**
 * A writing command owns its claims: announce this instance (shared ledger), take back what a
 * stopped process left, and sweep partial downloads that no version can resume.
 */
async function takeOver(app: App, releasers: Releasers): Promise<void> {
  const { config, ledger, log, owner } = app;
  if (hasInstanceRegistry(ledger)) {
    if (config.landingMode === 'per-host' && config.instance === undefined)
      log.warn(
        { event: 'landing.per_host_unnamed' },
        'landingMode: per-host without instance:; a restarted poller is a new instance and its landed, unprocessed files are fetched again; set instance: to a name that stays with this landing directory',
      );
    const instance = { id: instanceId(config), owner, host: os.hostname(), pid: process.pid };
    const heartbeat = await startInstanceHeartbeat({ registry: ledger, instance, leaseMs: config.leaseTimeMs, log });
    // Registered after the ledger: released before it closes.
    releasers.add(() => heartbeat.stop());
  }
  const recovered = await ledger.recoverStale(Date.now(), (o) => isOwnerGone(o, owner));
  const volumes = (await ledger.volumes?.recoverStaleVolumes(Date.now(), (o) => isOwnerGone(o, owner))) ?? 0;
  if (volumes) log.info({ event: 'ledger.recovered', volumes }, 'took back volume claims left by a stopped process');
  if (recovered.fetches || recovered.processing) {
    log.info({ event: 'ledger.recovered', ...recovered }, 'took back claims left by a stopped process');
  }
  const swept = await sweepPartials(config.landing, await ledger.liveFetches());
  if (swept)
    log.info({ event: 'landing.partials_swept', files: swept }, 'removed partial downloads no version can resume');
}

/** A volume plugin runs only for sources with `volumes:`: say so at start when it never can. */
function warnUnusedVolumePlugins(
  config: Pick<Config, 'sources'>,
  plugins: readonly { name: string; kind: 'file' | 'volume'; sources?: readonly string[] }[],
  log: Logger,
): void {
  for (const p of plugins) {
    if (p.kind !== 'volume') continue;
    const usable = config.sources.filter((s) => s.volumes && (!p.sources || p.sources.includes(s.name)));
    if (usable.length === 0)
      log.warn(
        { event: 'plugin.unused', plugin: p.name },
        `volume plugin ${p.name} never runs: no source${p.sources ? ` of ${p.sources.join(', ')}` : ''} has volumes:; add a volumes: block to the source`,
      );
  }
}

/** A landing root per host on a shared ledger: a volume's members are gathered where it runs. */
export function gathersVolumes(config: Pick<Config, 'landingMode' | 'postgres'>): boolean {
  return config.landingMode === 'per-host' && config.postgres !== undefined;
}

/** This poller's name among those sharing a ledger: `instance:`, or host:pid. */
export function instanceId(config: Pick<Config, 'instance'>): string {
  return config.instance ?? `${os.hostname()}:${process.pid}`;
}

/**
 * The configured ledger. PostgreSQL: `read` commands check the schema without migrating; `write`
 * and `probe` (check) connect and migrate, so `poller check` proves the database usable.
 */
async function openLedger(config: Config, mode: 'write' | 'read' | 'probe', log: Logger): Promise<Ledger> {
  if (config.postgres) {
    const pgLog = log.child({ ledger: config.postgres.displayUrl });
    return await PostgresLedger.open({
      url: config.postgres.url,
      displayUrl: config.postgres.displayUrl,
      ...(config.postgres.password !== undefined && { password: config.postgres.password }),
      poolSize: config.postgres.poolSize,
      readonly: mode === 'read',
      ...(config.landingMode === 'per-host' && { landedOn: instanceId(config) }),
      onIdleError: (err) =>
        pgLog.warn(
          { event: 'ledger.connection_lost', err: { code: errorCode(err), message: err.message } },
          'ledger connection lost; reconnecting on next use',
        ),
      // One line per move; `reason` is a code and a server message, never a URL or password.
      onSwitch: (sw) =>
        pgLog.warn(
          { event: 'ledger.failed_over', from: sw.from, to: sw.to, reason: sw.reason },
          `ledger failed over from ${sw.from} to ${sw.to}: now writing to the new primary`,
        ),
    });
  }
  const exists = checkLedgerAccess(config.ledger, mode);
  return mode === 'probe' && !exists
    ? new SqliteLedger(':memory:')
    : new SqliteLedger(config.ledger, { readonly: mode !== 'write' });
}

/**
 * Refuse what would break the service: root creating or opening a ledger in a directory the
 * service user owns leaves root-owned files (the database, its -wal and -shm) the service cannot
 * write. A `read` command also needs an existing ledger. Returns whether the ledger exists.
 */
function checkLedgerAccess(file: string, mode: 'write' | 'read' | 'probe'): boolean {
  const ownerOf = (p: string): number | undefined => {
    try {
      return statSync(p).uid;
    } catch {
      return undefined;
    }
  };
  const fileOwner = ownerOf(file);
  if (fileOwner === undefined && mode === 'read') {
    throw new UsageError(`no ledger at ${file} yet: nothing has run with this config`);
  }
  const owner = fileOwner ?? (mode === 'write' ? ownerOf(path.dirname(file)) : undefined);
  if (process.getuid?.() === 0 && owner !== undefined && owner !== 0) {
    throw new UsageError(
      `${fileOwner === undefined ? path.dirname(file) : file} belongs to uid ${owner}; run poller as that user (e.g. sudo -u poller poller ...) so the files SQLite creates stay writable for the service`,
    );
  }
  return fileOwner !== undefined;
}

/** A source as cycles see it: date templates moved out of the root path into the globs. */
export interface PreparedSource extends SourceConfig {
  /** Directory templates (`radar/{YYYY}/{MM}/{DD}`) relative to the root; absent without templates. */
  readonly dateDirTemplates?: readonly string[];
}

const prepared = new WeakMap<SourceConfig, PreparedSource>();

/**
 * The form of a source that cycles and Source objects use: a root path with date tokens
 * (`/data/{YYYY}/{MM}`) is cut at the first token and the rest joins the include globs. The
 * run-once command and the daemon must both use it so that ledger paths agree.
 */
export function prepareSource(src: SourceConfig): PreparedSource {
  let p = prepared.get(src);
  if (!p) {
    const split = splitDateTemplate(src.rootPath, src.include);
    p = Object.freeze({
      ...src,
      rootPath: split.rootPath,
      include: split.include,
      ...(split.dirTemplates && { dateDirTemplates: split.dirTemplates }),
    });
    prepared.set(src, p);
  }
  return p;
}

/** Dated directories a cycle lists when no window is given: the source's maxAge, or this. */
export const DEFAULT_DATE_WINDOW_MS = 2 * 86_400_000;
// Servers stamp directories by their own clock: list the next directory a little before midnight.
const CLOCK_SLACK_MS = 10 * 60_000;

/**
 * Start directories of one cycle, or undefined to walk from the root (no date template). The
 * window is [since, until) when given; a missing end is now, a missing start is the source's
 * maxAge (or 2 days) before the end.
 */
export function cycleStartDirs(
  src: PreparedSource,
  window: { sinceMs?: number | undefined; untilMs?: number | undefined },
  nowMs = Date.now(),
): string[] | undefined {
  if (!src.dateDirTemplates) return undefined;
  // `--until` alone: the window ends there, not now.
  const full: DateWindow = {
    sinceMs: window.sinceMs ?? (window.untilMs ?? nowMs) - (src.maxAgeMs ?? DEFAULT_DATE_WINDOW_MS),
    untilMs: window.untilMs ?? nowMs + CLOCK_SLACK_MS,
  };
  return startDirsFor(src.dateDirTemplates, full);
}
