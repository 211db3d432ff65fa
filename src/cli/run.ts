/**
 * `poller run`: the daemon. Polls each enabled source on its schedule, serves `/healthz`,
 * `/readyz` and `/metrics` when `http` is configured, reloads the config on SIGHUP and stops
 * gracefully on SIGTERM/SIGINT: no new cycle or transfer starts, transfers under way get a
 * grace period, then are aborted (their partial files stay for resume), plugins are torn down,
 * the ledger is closed and the process exits 0.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { CommandModule } from 'yargs';
import { formatDurationMs, parseDurationMs } from '../config/duration.js';
import { type Config, loadConfig, type SourceConfig } from '../config/load.js';
import { type CycleDeps, type CycleEvents, runCycle } from '../engine/cycle.js';
import { startRetentionTimer, unboundedWarning } from '../engine/retention-timer.js';
import { type CycleOutcome, createScheduler, nominalIntervalMs } from '../engine/scheduler.js';
import { staleVolumeCount } from '../engine/volume-stage.js';
import { startVolumeTimer } from '../engine/volume-timer.js';
import { ConfigError, coerceError } from '../errors.js';
import { type EventsHub, type EventsHubOptions, outboxRoutes, wantsIntegrity } from '../events/outbox.js';
import { evaluateReadiness, type HealthReport } from '../observe/health.js';
import type { HttpServerHandle } from '../observe/http.js';
import type { Metrics } from '../observe/metrics.js';
import type { PluginRunner, RunnerObserver } from '../plugins/runner.js';
import { toleratingMissingDirs } from '../sources/date-template.js';
import { loadSourceKinds } from '../sources/index.js';
import type { Source } from '../sources/source.js';
import { type App, cycleStartDirs, instanceId, openApp, prepareSource } from './app.js';
import { explainPath, whyLines } from './inspect.js';
import { type CommonArgs, commonOptions } from './options.js';
import { UsageError } from './output.js';

interface RunArgs extends CommonArgs {
  grace: string;
}

/** Past the grace period, this long for aborts, teardown and the ledger; then the process is ended (under systemd's TimeoutStopSec=45s with the default 30 s grace). */
const WATCHDOG_EXTRA_MS = 10_000;
/** After a clean shutdown, a handle some library forgot must not keep the process alive. */
const EXIT_LINGER_MS = 2_000;

/**
 * Sources and plugins built from one config. A reload builds the next generation; the old one
 * is closed once the cycles that started with it have ended, so a cycle never sees a mix.
 */
interface Generation {
  readonly config: Config;
  readonly runner: PluginRunner;
  source(src: SourceConfig): Source;
  deps: CycleDeps;
  users: number;
  retired: boolean;
  /** Sources by name, with the settings they were opened with (to reuse them across a reload). */
  readonly sources: Map<string, { src: SourceConfig; source: Source }>;
  close(): Promise<void>;
}

async function openGeneration(
  app: App,
  config: Config,
  events: CycleEvents,
  previous: Generation | undefined,
  observer: RunnerObserver,
): Promise<Generation> {
  // A reload may bring a source kind the process has not imported yet.
  await loadSourceKinds(config.sources);
  const runner = await app.openRunner(config, observer);
  const sources = new Map<string, { src: SourceConfig; source: Source }>();
  for (const src of config.sources) {
    const prev = previous?.sources.get(src.name);
    // Unchanged connection settings: keep the pool (and its open connections).
    if (prev && isDeepStrictEqual(prev.src, src)) {
      sources.set(src.name, prev);
      previous?.sources.delete(src.name);
    }
  }
  let closing: Promise<void> | undefined;
  const gen: Generation = {
    config,
    runner,
    users: 0,
    retired: false,
    sources,
    source(src) {
      let entry = sources.get(src.name);
      if (!entry) {
        entry = { src, source: app.openSource(src) };
        sources.set(src.name, entry);
      }
      return entry.source;
    },
    deps: {
      ledger: app.ledger,
      runner,
      log: app.log,
      owner: app.owner,
      landingRoot: config.landing,
      transferLimit: app.transferLimit,
      retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs,
      listerLeaseMs: config.leaseTimeMs,
      events,
      // A sink that announces landed files wants their SHA-512 (WNM `integrity`).
      ...(wantsIntegrity(config) && { hashLanded: true }),
    },
    close() {
      closing ??= (async () => {
        await runner.teardown();
        for (const { source } of sources.values()) await source.close().catch(() => undefined);
      })();
      return closing;
    },
  };
  return gen;
}

/** CycleEvents → metrics helpers, plus the last successful poll of each source for readiness. */
function metricEvents(metrics: Metrics, lastSuccessMs: Map<string, number>): CycleEvents {
  return {
    listed(source, files, truncated, unparsedLines) {
      metrics.filesListed(source, files);
      if (truncated) metrics.listingTruncated(source);
      if (unparsedLines) metrics.listingLinesUnparsed(source, unparsedLines);
    },
    fetched(source, _path, sizeBytes, durationMs, mtimeMs) {
      metrics.fileFetched(source, sizeBytes, durationMs, mtimeMs);
    },
    fetchFailed(source, _path, _code, quarantined) {
      metrics.fileFailed(source, 'fetch');
      if (quarantined) metrics.fileQuarantined(source);
    },
    pluginRan(plugin, ok, durationMs) {
      metrics.pluginRun(plugin, ok ? 'succeeded' : 'failed', durationMs);
    },
    volumeClosed(source, state, waitMs) {
      metrics.volumeClosed(source, state, waitMs);
    },
    processed(source, _path, state) {
      if (state === 'failed' || state === 'quarantined') metrics.fileFailed(source, 'process');
      if (state === 'quarantined') metrics.fileQuarantined(source);
    },
    polled(source, ok) {
      const now = Date.now();
      if (ok) {
        lastSuccessMs.set(source, now);
        metrics.pollSucceeded(source, now);
      } else metrics.pollFailed(source);
    },
  };
}

/** Runner hooks → metrics: runs in flight, time waiting for a worker, workers replaced. */
function runnerMetrics(metrics: Metrics): RunnerObserver {
  return {
    inFlight: (plugin, n) => metrics.pluginInFlight(plugin, n),
    waited: (plugin, ms) => metrics.pluginWaited(plugin, ms),
    hostReplaced: (plugin, reason) => metrics.pluginHostReplaced(plugin, reason),
  };
}

/** Log every problem of a config that could not be loaded, one line each. */
function logReloadFailure(log: Logger, thrown: unknown): void {
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

export async function runDaemon(args: RunArgs): Promise<number> {
  const graceMs = parseDurationMs(args.grace);
  if (graceMs === undefined) throw new UsageError(`--grace ${args.grace}: not a duration; write e.g. 30s`);
  const app = await openApp({
    configPath: args.config,
    logTo: 'stdout',
    ...(args.logLevel && { logLevel: args.logLevel }),
  });
  const log = app.log;
  const startedAtMs = Date.now();
  // Loaded here, not at the top: every other command starts faster without prom-client.
  const { createMetrics } = await import('../observe/metrics.js');
  const { startHttpServer } = await import('../observe/http.js');
  const { collectStatus } = await import('../status/collect.js');
  const { freshness, isLate } = await import('../status/freshness.js');
  const { statusPage } = await import('../status/serve.js');
  const metrics = createMetrics({
    processMetrics: true,
    ...(app.config.postgres && { instance: instanceId(app.config) }),
  });
  const lastSuccessMs = new Map<string, number>();
  const events = metricEvents(metrics, lastSuccessMs);
  const observer = runnerMetrics(metrics);
  // The last-success gauge carries over a restart, so an alert on its age does not reset.
  const configured = new Set(app.config.sources.map((s) => s.name));
  for (const s of await app.ledger.status()) {
    if (configured.has(s.name) && s.lastSuccessMs !== null) metrics.pollSucceeded(s.name, s.lastSuccessMs);
  }
  const { openEventsHub } = await import('../events/outbox.js');
  const hubOptions: EventsHubOptions = {
    onPublished: (sink, n) => metrics.eventsPublished(sink, n),
    onFailed: (sink) => metrics.eventsFailed(sink),
  };
  /** Replaced on a SIGHUP that changes `events:`. */
  let hub: EventsHub | undefined = await openEventsHub(app.config, app.ledger, log, hubOptions);
  hub?.start();
  // Sent rows are deleted after the retention, at start and then hourly.
  const pruneEvents = () =>
    void hub
      ?.prune(Date.now())
      .then((n) => n && log.info({ event: 'outbox.pruned', events: n }, `pruned ${n} sent events`))
      .catch((err: unknown) => log.warn({ err }, 'pruning sent events failed'));
  pruneEvents();
  const pruneTimer = setInterval(pruneEvents, 3_600_000);
  pruneTimer.unref();

  /**
   * A reload that changes `events:`: the old dispatchers finish the batch under way and close
   * before the new ones start (one sender per sink: ids stay in order, none sent twice by two
   * loops), and the ledger writes rows for the new routes from the next transition on. Rows
   * pending for a sink that is gone stay in the outbox, and the log says how many.
   */
  const reloadEvents = async (next: Config, previous: Config): Promise<void> => {
    if (isDeepStrictEqual(next.events, previous.events)) return;
    const nextHub = await openEventsHub(next, app.ledger, log, hubOptions);
    const old = hub;
    const kept = new Set((next.events?.sinks ?? []).map((s) => s.name));
    for (const d of old?.stats() ?? []) {
      if (!kept.has(d.sink) && d.pending > 0)
        log.warn(
          { event: 'events.sink_removed', sink: d.sink, pending: d.pending },
          `sink ${d.sink} was removed with ${d.pending} event(s) unsent; they stay in the outbox and go out if it comes back`,
        );
    }
    app.ledger.setOutbox(outboxRoutes(next));
    await old?.stop();
    hub = nextHub;
    hub?.start();
    log.info(
      { event: 'events.reloaded', sinks: (next.events?.sinks ?? []).map((s) => s.name) },
      'event sinks reloaded',
    );
  };
  /** Aborted on SIGTERM: no new cycle starts. */
  const stopScheduling = new AbortController();
  /** Aborted on SIGTERM too: cycles under way start no new transfer. `app.shutdown` aborts the rest. */
  const drain = new AbortController();
  let gen: Generation;
  let http: HttpServerHandle | undefined;
  try {
    gen = await openGeneration(app, app.config, events, undefined, observer);
  } catch (err) {
    await app.close();
    throw err;
  }

  /** Retired generations being closed; shutdown waits for them before the ledger closes. */
  const closings: Promise<void>[] = [];
  const closeWhenUnused = (g: Generation) => {
    if (g.retired && g.users === 0)
      closings.push(g.close().catch((err: unknown) => log.warn({ err }, 'closing the previous config failed')));
  };
  const retire = (old: Generation) => {
    old.retired = true;
    closeWhenUnused(old);
  };

  /** Sources held paused by a source-level error (login rejected, TLS), with its message, for the status page. */
  const paused = new Map<string, string>();

  const cycle = async (src: SourceConfig): Promise<CycleOutcome> => {
    const g = gen;
    g.users++;
    try {
      const prepared = prepareSource(src);
      const startDirs = cycleStartDirs(prepared, {});
      const source = g.source(src);
      const summary = await runCycle(prepared, startDirs ? toleratingMissingDirs(source, startDirs) : source, g.deps, {
        signal: app.shutdown.signal,
        drainSignal: drain.signal,
        settleWithinCycle: false,
        ...(startDirs && { startDirs }),
      });
      if (summary.error?.paused) paused.set(src.name, summary.error.message);
      else paused.delete(src.name);
      // Ready files over the cap: the next batch starts at once instead of at the next tick.
      return { paused: summary.error?.paused === true, more: summary.readyLeft > 0 && summary.fetched > 0 };
    } finally {
      g.users--;
      closeWhenUnused(g);
    }
  };

  const scheduler = createScheduler<SourceConfig>({
    runCycle: cycle,
    watch(src, onChange, signal) {
      // Only the cycle's window is watched (date directories, maxAge), recomputed as it moves.
      const scope = () => ({ startDirs: cycleStartDirs(prepareSource(src), {}), maxAgeMs: src.maxAgeMs });
      return gen.source(src).watch?.(() => onChange(), { signal, scope });
    },
    log,
    signal: stopScheduling.signal,
  });

  const health = (): HealthReport => ({
    live: true,
    ...(hub && {
      degraded: hub
        .lagging(Date.now())
        .map(
          (l) =>
            `sink ${l.sink}: ${l.pending} event(s) pending, oldest ${Math.round(l.oldestPendingAgeMs / 1000)} s old`,
        ),
    }),
    readiness: evaluateReadiness({
      nowMs: Date.now(),
      startedAtMs,
      sources: gen.config.sources.map((s) => ({
        name: s.name,
        enabled: s.enabled,
        intervalMs: nominalIntervalMs(s),
        lastSuccessAtMs: lastSuccessMs.get(s.name),
      })),
    }),
  });

  const statusReport = () =>
    collectStatus({ ledger: app.ledger, sources: gen.config.sources, paused, nowMs: Date.now(), startedAtMs });
  const whyText = async (remotePath: string, sourceName: string | undefined): Promise<string> => {
    const answers = await explainPath(app.ledger, gen.config, remotePath, sourceName);
    if (answers.length === 0) return `no source named "${sourceName ?? ''}" in the config\n`;
    return `${whyLines(answers).join('\n')}\n`;
  };
  /** `poller_source_late` from the same freshness rule as the status page. */
  const updateLateness = async () => {
    const expecting = gen.config.sources.filter((s) => s.expectEveryMs !== undefined);
    if (expecting.length === 0) return;
    const newest = new Map((await app.ledger.status()).map((r) => [r.name, r.newestFetchedMtimeMs]));
    const nowMs = Date.now();
    for (const s of expecting) {
      const f = freshness({
        expectEveryMs: s.expectEveryMs,
        newestMtimeMs: newest.get(s.name) ?? null,
        nowMs,
        startedAtMs,
      });
      metrics.sourceLate(s.name, s.enabled && isLate(f));
    }
  };

  const httpConfig = app.config.http;
  if (httpConfig) {
    try {
      http = await startHttpServer({
        host: httpConfig.host,
        port: httpConfig.port,
        metrics: {
          contentType: metrics.contentType,
          async render() {
            for (const d of hub?.stats() ?? []) metrics.outboxBacklog(d.sink, d.pending, d.oldestPendingMs);
            for (const s of gen.config.sources) {
              const n = app.connectionsInUse(s);
              if (n !== undefined) metrics.poolInUse(s.name, n);
            }
            await updateLateness();
            if (app.ledger.volumes && gen.config.sources.some((s) => s.volumes)) {
              const stale = new Map<string, number>();
              for (const s of gen.config.sources)
                if (s.volumes) stale.set(s.name, await staleVolumeCount(app.ledger, s, Date.now()));
              metrics.volumeCounts(await app.ledger.volumes.volumeCounts(), stale);
            }
            return metrics.render();
          },
        },
        health,
        status: statusPage(statusReport, whyText, httpConfig.refreshMs),
        ...(httpConfig.auth && { auth: httpConfig.auth }),
        log,
        signal: app.shutdown.signal,
      });
    } catch (err) {
      await gen.close();
      await app.close();
      throw err;
    }
  }

  let reloading: Promise<void> | undefined;
  const reload = async () => {
    log.info({ event: 'config.reloading' }, 'SIGHUP: reloading the config');
    let loaded: Config;
    let next: Generation;
    try {
      loaded = loadConfig(args.config, process.env, { needSecrets: true });
      next = await openGeneration(app, keepRestartOnly(loaded, gen.config), events, gen, observer);
    } catch (err) {
      logReloadFailure(log, err);
      return;
    }
    if (stopScheduling.signal.aborted) {
      await next.close();
      return;
    }
    try {
      await reloadEvents(next.config, gen.config);
    } catch (err) {
      await next.close();
      logReloadFailure(log, err);
      return;
    }
    for (const key of RESTART_ONLY) {
      if (!isDeepStrictEqual(loaded[key], gen.config[key]))
        log.warn(
          { event: 'config.restart_needed', setting: key },
          `${key} changed: it takes effect at the next restart`,
        );
    }
    const old = gen;
    gen = next;
    retire(old);
    scheduler.update(next.config.sources);
    log.info(
      { event: 'config.reloaded', sources: next.config.sources.filter((s) => s.enabled).map((s) => s.name) },
      'config reloaded',
    );
  };

  let stopping: ((signal: string) => void) | undefined;
  const stopped = new Promise<string>((resolve) => {
    stopping = resolve;
  });
  let stopSignal: string | undefined;
  const onStop = (signal: NodeJS.Signals) => {
    if (stopSignal !== undefined) {
      // A second signal: do not wait out the grace period.
      log.warn({ event: 'daemon.aborting', signal }, 'second signal: aborting transfers now');
      app.shutdown.abort(new Error(`${signal} received twice`));
      return;
    }
    stopSignal = signal;
    stopping?.(signal);
  };
  const onHup = () => {
    if (stopSignal !== undefined) return;
    reloading = (reloading ?? Promise.resolve()).then(reload).catch((err: unknown) => logReloadFailure(log, err));
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);

  scheduler.update(app.config.sources);
  const unbounded = unboundedWarning(app.config);
  if (unbounded) log.warn({ event: 'ledger.unbounded' }, unbounded);
  const retention = startRetentionTimer({
    ledger: app.ledger,
    config: () => gen.config,
    volumePlugins: () => gen.runner.plugins.filter((p) => p.kind === 'volume').map((p) => p.name),
    log,
    signal: drain.signal,
    onPruned: (n) => metrics.ledgerPruned(n),
    onStats: (s) => metrics.ledgerSize(s),
  });
  // Quiet times run out between cycles: volumes are declared partial (and run) on time.
  const volumeTimer = startVolumeTimer({
    sources: () => gen.config.sources,
    async runStage(src, stage) {
      const g = gen;
      g.users++;
      try {
        return await stage(src, g.deps, drain.signal);
      } finally {
        g.users--;
        closeWhenUnused(g);
      }
    },
    log,
    signal: drain.signal,
  });
  log.info(
    {
      event: 'daemon.started',
      sources: app.config.sources.filter((s) => s.enabled).map((s) => s.name),
      ...(http && { httpPort: http.port }),
    },
    'poller running',
  );

  const signal = await stopped;
  log.info(
    { event: 'daemon.stopping', signal, graceMs, running: scheduler.running() },
    `${signal}: stopping; transfers under way get ${formatDurationMs(graceMs)}`,
  );
  const watchdog = setTimeout(() => {
    log.fatal({ event: 'daemon.shutdown_hung' }, 'shutdown did not finish in time; exiting');
    process.exit(1);
  }, graceMs + WATCHDOG_EXTRA_MS);
  watchdog.unref();
  stopScheduling.abort();
  drain.abort();
  const grace = setTimeout(() => {
    log.warn(
      { event: 'daemon.grace_expired', running: scheduler.running() },
      'grace period over: aborting transfers (partial files stay for resume)',
    );
    app.shutdown.abort(new Error('grace period over'));
  }, graceMs);
  try {
    await scheduler.idle();
    await retention.stop();
    await volumeTimer.stop();
    clearTimeout(grace);
    clearInterval(pruneTimer);
    await reloading;
    // What the last cycles committed goes out if the broker answers quickly; the rest waits in the outbox.
    if (hub) {
      await hub.stop();
      await hub.drain(Date.now() + Math.min(graceMs, 5000));
      await hub.stop();
    }
    await reloading;
    await http?.close();
    await Promise.all(closings);
    await gen.close();
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHup);
    log.info({ event: 'daemon.stopped' }, 'poller stopped');
    await app.close();
  }
  setTimeout(() => process.exit(process.exitCode ?? 0), EXIT_LINGER_MS).unref();
  return 0;
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
