/**
 * `poller run`: the daemon. Polls each enabled source on its schedule, serves `/healthz`,
 * `/readyz` and `/metrics` when `http` is configured, reloads the config on SIGHUP and stops
 * gracefully on SIGTERM/SIGINT: no new cycle or transfer starts, transfers under way get a
 * grace period, then are aborted (their partial files stay for resume), plugins are torn down,
 * the ledger is closed and the process exits 0.
 */
import type { CommandModule } from 'yargs';
import type { SourceConfig } from '../config/load.js';
import { runCycle } from '../engine/cycle.js';
import { startRetentionTimer, unboundedWarning } from '../engine/retention-timer.js';
import { type CycleOutcome, createScheduler } from '../engine/scheduler.js';
import { startVolumeTimer } from '../engine/volume-timer.js';
import { toleratingMissingDirs } from '../sources/date-template.js';
import { parseDurationMs } from '../util/duration.js';
import { type App, cycleStartDirs, openApp, prepareSource } from './app.js';
import { startEvents } from './daemon/events.js';
import type { Generation } from './daemon/generation.js';
import { openGeneration, trackGenerations } from './daemon/generation.js';
import { startDaemonHttp } from './daemon/http.js';
import { startTelemetry } from './daemon/metrics.js';
import { reloadConfig } from './daemon/reload.js';
import { createShutdown, type DaemonShutdown } from './daemon/shutdown.js';
import { type DaemonSignals, listenForSignals } from './daemon/signals.js';
import { type CommonArgs, commonOptions } from './options.js';
import { UsageError } from './output.js';
import { Releasers } from './releasers.js';

interface RunArgs extends CommonArgs {
  grace: string;
}

/** After a clean shutdown, a handle some library forgot must not keep the process alive. */
const EXIT_LINGER_MS = 2_000;
/** At the stop, what the last cycles committed goes out if the broker answers within this (at most the grace). */
const EVENTS_DRAIN_MS = 5_000;

/**
 * Start, wait for a stop signal, stop. Every resource registers its releaser as it starts; the
 * one `release()` in `finally` undoes them in reverse order, whether the start failed or a
 * signal came.
 */
export async function runDaemon(args: RunArgs): Promise<number> {
  const graceMs = parseDurationMs(args.grace);
  if (graceMs === undefined) throw new UsageError(`--grace ${args.grace}: not a duration; write e.g. 30s`);
  const app = await openApp({
    configPath: args.config,
    logTo: 'stdout',
    ...(args.logLevel && { logLevel: args.logLevel }),
  });
  const releasers = new Releasers(app.log);
  releasers.add(() => app.close());
  try {
    const signals = listenForSignals(app.log, app.shutdown, releasers);
    const shutdown = createShutdown(app.log, graceMs, app.shutdown);
    const { running } = await startDaemon(app, args.config, { graceMs, signals, shutdown, releasers });
    shutdown.begin(await signals.stopped, running);
  } finally {
    await releasers.release();
  }
  setTimeout(() => process.exit(process.exitCode ?? 0), EXIT_LINGER_MS).unref();
  return 0;
}

interface DaemonParts {
  graceMs: number;
  signals: DaemonSignals;
  shutdown: DaemonShutdown;
  releasers: Releasers;
}

/**
 * Metrics, event sinks, the first generation, the HTTP endpoint, then the loops: the scheduler,
 * retention and volume timers. Released in the reverse order: the loops end first (within the
 * grace), then the endpoint, the generations, the sinks (a bounded last send) and the ledger.
 */
async function startDaemon(app: App, configPath: string, parts: DaemonParts): Promise<{ running: () => string[] }> {
  const { log } = app;
  const { signals, shutdown, releasers } = parts;
  const startedAtMs = Date.now();
  const telemetry = await startTelemetry(app);
  const { metrics, cycleEvents, observer } = telemetry;
  releasers.add(() => telemetry.lateness.stop());
  const events = await startEvents(app, metrics, Math.min(parts.graceMs, EVENTS_DRAIN_MS), releasers);
  const first = await openGeneration(app, app.config, cycleEvents, undefined, observer);
  const generations = trackGenerations(first, log);
  releasers.add(() => generations.close());
  /** Sources held paused by a source-level error (login rejected, TLS), with its message, for the status page. */
  const paused = new Map<string, string>();
  const http = await startDaemonHttp({ app, generations, events, telemetry, paused, startedAtMs }, releasers);
  // Released once the loops below have ended: nothing is aborted past that point.
  releasers.add(() => shutdown.endGrace());
  releasers.add(() => signals.reloadsSettled());
  const scheduler = createScheduler<SourceConfig>({
    runCycle: (src) => generations.use((g) => runSourceCycle(app, g, src, shutdown.transfers, paused)),
    watch(src, onChange, signal) {
      // Only the cycle's window is watched (date directories, maxAge), recomputed as it moves.
      const scope = () => ({ startDirs: cycleStartDirs(prepareSource(src), {}), maxAgeMs: src.maxAgeMs });
      return generations.current.source(src).watch?.(() => onChange(), { signal, scope });
    },
    log,
    signal: shutdown.scheduling,
  });
  releasers.add(() => scheduler.idle());
  const reloadContext = {
    app,
    configPath,
    generations,
    events,
    scheduler,
    cycleEvents,
    observer,
    onReloaded: (g: Generation) => telemetry.follow(g),
  };
  signals.onReload(() => reloadConfig({ ...reloadContext, stopping: shutdown.scheduling }));
  scheduler.update(app.config.sources);
  telemetry.follow(first);
  const unbounded = unboundedWarning(app.config);
  if (unbounded) log.warn({ event: 'ledger.unbounded' }, unbounded);
  const retention = startRetentionTimer({
    ledger: app.ledger,
    config: () => generations.current.config,
    volumePlugins: () => generations.current.runner.plugins.filter((p) => p.kind === 'volume').map((p) => p.name),
    log,
    signal: shutdown.transfers,
    onPruned: (n) => metrics.ledgerPruned(n),
    onStats: (s) => metrics.ledgerSize(s),
  });
  releasers.add(() => retention.stop());
  // Quiet times run out between cycles: volumes are declared partial (and run) on time.
  const volumeTimer = startVolumeTimer({
    sources: () => generations.current.config.sources,
    runStage: (src, stage) => generations.use((g) => stage(src, g.deps, shutdown.transfers)),
    log,
    signal: shutdown.transfers,
  });
  releasers.add(() => volumeTimer.stop());
  log.info(
    {
      event: 'daemon.started',
      sources: app.config.sources.filter((s) => s.enabled).map((s) => s.name),
      ...(http && { httpPort: http.port }),
    },
    'poller running',
  );
  return { running: () => scheduler.running() };
}

/** One cycle of one source on generation `g`; a source-level error holds the source paused. */
async function runSourceCycle(
  app: App,
  g: Generation,
  src: SourceConfig,
  drain: AbortSignal,
  paused: Map<string, string>,
): Promise<CycleOutcome> {
  const prepared = prepareSource(src);
  const startDirs = cycleStartDirs(prepared, {});
  const source = g.source(src);
  const summary = await runCycle(prepared, startDirs ? toleratingMissingDirs(source, startDirs) : source, g.deps, {
    signal: app.shutdown.signal,
    drainSignal: drain,
    settleWithinCycle: false,
    ...(startDirs && { startDirs }),
  });
  if (summary.error?.paused) paused.set(src.name, summary.error.message);
  else paused.delete(src.name);
  // Ready files over the cap: the next batch starts at once instead of at the next tick.
  return { paused: summary.error?.paused === true, more: summary.readyLeft > 0 && summary.fetched > 0 };
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run',
  describe: 'Run the daemon: poll every enabled source on its schedule until SIGTERM',
  builder: (y) =>
    commonOptions(y).option('grace', {
      type: 'string',
      default: '30s',
      describe: 'On SIGTERM, how long transfers under way may take before they are aborted (resumable)',
    }) as never,
  handler: async (args) => {
    process.exitCode = await runDaemon(args);
  },
};
