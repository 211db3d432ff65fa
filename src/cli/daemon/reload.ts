/**
 * SIGHUP: load the config again and, when it is valid and its sources and plugins open, swap the
 * generation and the event sinks; otherwise keep the running config and log every problem.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { type Config, loadConfig, type SourceConfig } from '../../config/load.js';
import type { CycleEvents } from '../../engine/cycle.js';
import type { Scheduler } from '../../engine/scheduler.js';
import { ConfigError, coerceError } from '../../errors.js';
import type { RunnerObserver } from '../../plugins/runner.js';
import type { App } from '../app.js';
import type { DaemonEvents } from './events.js';
import { type Generation, type Generations, openGeneration } from './generation.js';

/** Log every problem of a config that could not be loaded, one line each. */
export function logReloadFailure(log: Logger, thrown: unknown): void {
  const err = coerceError(thrown);
  const issues = err instanceof ConfigError ? err.issues : [err.message];
  for (const issue of issues)
    log.error({ event: 'config.reload_failed', issue }, `config reload failed, keeping the running config: ${issue}`);
}

/** Settings that are read once at start; a reload that changes them says so. */
const RESTART_ONLY = ['landing', 'ledger', 'stateDir', 'maxTransfers', 'http', 'logLevel'] as const;

/**
 * The reloaded config with the restart-only settings of the running one: partial files stay
 * where resume looks for them, and plugins keep their state directory.
 */
function keepRestartOnly(loaded: Config, running: Config): Config {
  return Object.freeze({
    ...loaded,
    landing: running.landing,
    ledger: running.ledger,
    ...(running.postgres && { postgres: running.postgres }),
    instance: running.instance,
    stateDir: running.stateDir,
    maxTransfers: running.maxTransfers,
    logLevel: running.logLevel,
    http: running.http,
  });
}

export interface ReloadContext {
  app: App;
  configPath: string;
  generations: Generations;
  events: DaemonEvents;
  scheduler: Scheduler<SourceConfig>;
  cycleEvents: CycleEvents;
  observer: RunnerObserver;
  /** Aborted once the daemon stops: a reload that finishes loading then is dropped. */
  stopping: AbortSignal;
  /** The new generation runs (telemetry follows its sources and plugins). */
  onReloaded?: (next: Generation) => void;
}

export async function reloadConfig(ctx: ReloadContext): Promise<void> {
  const { app, generations } = ctx;
  const log = app.log;
  log.info({ event: 'config.reloading' }, 'SIGHUP: reloading the config');
  const running = generations.current.config;
  let loaded: Config;
  let next: Generation;
  try {
    loaded = loadConfig(ctx.configPath, process.env, { needSecrets: true });
    next = await openGeneration(
      app,
      keepRestartOnly(loaded, running),
      ctx.cycleEvents,
      generations.current,
      ctx.observer,
    );
  } catch (err) {
    logReloadFailure(log, err);
    return;
  }
  if (ctx.stopping.aborted) {
    await next.close();
    return;
  }
  try {
    await ctx.events.reload(next.config, running);
  } catch (err) {
    await next.close();
    logReloadFailure(log, err);
    return;
  }
  for (const key of RESTART_ONLY) {
    if (!isDeepStrictEqual(loaded[key], running[key]))
      log.warn({ event: 'config.restart_needed', setting: key }, `${key} changed: it takes effect at the next restart`);
  }
  generations.replace(next);
  ctx.scheduler.update(next.config.sources);
  ctx.onReloaded?.(next);
  log.info(
    { event: 'config.reloaded', sources: next.config.sources.filter((s) => s.enabled).map((s) => s.name) },
    'config reloaded',
  );
}
