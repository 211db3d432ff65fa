/**
 * Runs plugins on landed files, isolated: a throw, a rejection, a hang, a spin, a crash or
 * running out of memory becomes a recorded outcome and never reaches the engine. By default a
 * plugin runs in a pool of worker threads (`isolate: worker`), or of child processes
 * (`process`); there the timeout and the memory limit are enforced by terminating the host.
 * With `isolate: none` a run shares the poller's thread: a plugin that ignores its signal is
 * abandoned at the timeout (its promise left to settle on its own), and a synchronous loop
 * cannot be stopped.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import { coerceError, errorCode, PermanentError, TransientError } from '../errors.js';
import type { EmittedOutput, PluginFile, PluginVolume } from './api.js';
import { HostPool, HostStartError, PluginHost, type TaskResult } from './isolation/pool.js';
import { type HostInit, RUN_BINDING, type WireError } from './isolation/protocol.js';
import type { LoadedPlugin } from './loader.js';
import { runSignal } from './run-signal.js';

export interface RunOutcome {
  plugin: string;
  ok: boolean;
  /** The run failed and retrying will not help (a PermanentError, or out of memory). */
  permanent: boolean;
  /** The run was cut short by shutdown, not failed by the plugin. */
  interrupted?: boolean;
  errorCode?: string;
  message?: string;
  durationMs: number;
  outputs: EmittedOutput[];
}

/**
 * One unit of work for a plugin: `plugin[method](arg, ctx)`. `arg` must be a plain object (it
 * crosses to a worker or child by structured clone); `bindings` go on the run's log lines.
 */
export interface PluginTask {
  readonly method: string;
  readonly arg: unknown;
  readonly attempt: number;
  readonly bindings: Readonly<Record<string, unknown>>;
}

/** Hooks for metrics; each is optional. */
export interface RunnerObserver {
  /** Runs of `plugin` executing now (waiting for a worker excluded). */
  inFlight?(plugin: string, n: number): void;
  /** A run waited this long for a free worker (or a concurrency slot with `isolate: none`). */
  waited?(plugin: string, ms: number): void;
  /** A worker or child was lost (crash, out of memory, terminated at the timeout) and will be replaced. */
  hostReplaced?(plugin: string, reason: 'timeout' | 'crashed' | 'out_of_memory' | 'interrupted'): void;
}

export class PluginTimeoutError extends Error {
  readonly code = 'POLLER_PLUGIN_TIMEOUT';
}

/** A host's setup (node start, module load, setup) may take at least this long. */
const MIN_HOST_SETUP_MS = 30_000;

/** How long teardown of one plugin may take, per host. */
const TEARDOWN_TIMEOUT_MS = 10_000;

export class PluginRunner {
  readonly #plugins: readonly LoadedPlugin[];
  readonly #log: Logger;
  readonly #stateDir: string;
  readonly #shutdown: AbortSignal;
  readonly #observer: RunnerObserver;
  readonly #limits = new Map<string, LimitFunction>();
  readonly #pools = new Map<string, HostPool>();
  readonly #inFlight = new Map<string, number>();
  /** Plugins whose setup failed: every file fails for them with this error, until restart. */
  readonly #setupErrors = new Map<string, Error>();
  #setUp = false;

  constructor(opts: {
    plugins: readonly LoadedPlugin[];
    log: Logger;
    stateDir: string;
    shutdownSignal: AbortSignal;
    observer?: RunnerObserver;
  }) {
    this.#plugins = opts.plugins;
    this.#log = opts.log;
    this.#stateDir = opts.stateDir;
    this.#shutdown = opts.shutdownSignal;
    this.#observer = opts.observer ?? {};
    for (const p of this.#plugins) {
      this.#limits.set(p.name, pLimit(p.concurrency));
      if (p.isolate !== 'none') this.#pools.set(p.name, this.#newPool(p));
    }
  }

  get plugins(): readonly LoadedPlugin[] {
    return this.#plugins;
  }

  #newPool(p: LoadedPlugin): HostPool {
    if (p.moduleUrl === undefined)
      throw new Error(`plugin ${p.name}: isolate ${p.isolate} needs the plugin's module URL; use isolate: none`);
    const init: HostInit = {
      type: 'init',
      moduleUrl: p.moduleUrl,
      name: p.name,
      rawOptions: p.rawOptions ?? p.options,
      stateDir: path.join(this.#stateDir, p.name),
      logLevel: this.#log.level,
      // Starting a worker or a node child on a busy host can take seconds: a short run timeout must not fail setup.
      setupTimeoutMs: Math.max(p.timeoutMs, MIN_HOST_SETUP_MS),
    };
    const isolate = p.isolate === 'process' ? 'process' : 'worker';
    const pluginLog = this.#log.child({ plugin: p.name });
    return new HostPool(
      () => new PluginHost(isolate, p.memoryLimitMb, (line) => relogLine(line, pluginLog, this.#runLogs)),
      init,
    );
  }

  /** Loggers of the runs in progress, by the run binding the host puts on their lines. */
  readonly #runLogs = new Map<number, Logger>();
  #nextRun = 1;

  #ctxBase(p: LoadedPlugin) {
    return {
      log: this.#log.child({ plugin: p.name }),
      options: p.options,
      stateDir: path.join(this.#stateDir, p.name),
      signal: this.#shutdown,
    };
  }

  /**
   * Run every plugin's setup once: in process for `isolate: none`, in a first worker (or child)
   * otherwise, so a broken setup shows at start. A failing setup is logged and recorded per
   * file, not fatal.
   */
  async setup(): Promise<void> {
    if (this.#setUp) return;
    this.#setUp = true;
    await Promise.all(
      this.#plugins.map(async (p) => {
        try {
          const pool = this.#pools.get(p.name);
          if (pool) {
            pool.release(await pool.acquire());
            return;
          }
          const ctx = this.#ctxBase(p);
          await mkdir(ctx.stateDir, { recursive: true });
          await withTimeout(Promise.resolve(p.plugin.setup?.(ctx as never)), p.timeoutMs, this.#shutdown);
        } catch (thrown) {
          this.#setupFailed(p, thrown);
        }
      }),
    );
  }

  #setupFailed(p: LoadedPlugin, thrown: unknown): Error {
    const err = thrown instanceof HostStartError ? fromWire(thrown.wire) : coerceError(thrown);
    if (!this.#setupErrors.has(p.name)) {
      this.#setupErrors.set(p.name, err);
      this.#log.error(
        { event: 'plugin.setup_failed', plugin: p.name, err },
        `plugin ${p.name}: setup failed: ${err.message}`,
      );
    }
    return err;
  }

  /** File plugins that want this file (by source and match). */
  pluginsFor(file: PluginFile): LoadedPlugin[] {
    return this.#plugins.filter(
      (p) =>
        p.kind === 'file' &&
        (!p.sources || p.sources.includes(file.source)) &&
        safeMatch(p, () => p.matches(file), this.#log),
    );
  }

  /** Volume plugins that want this volume (by source and match). */
  volumePluginsFor(volume: PluginVolume): LoadedPlugin[] {
    return this.#plugins.filter(
      (p) =>
        p.kind === 'volume' &&
        (!p.sources || p.sources.includes(volume.source)) &&
        safeMatch(p, () => p.matchesVolume(volume), this.#log),
    );
  }

  /** Whether any volume plugin is configured (for the source, when given). */
  hasVolumePlugins(source?: string): boolean {
    return this.#plugins.some((p) => p.kind === 'volume' && (!source || !p.sources || p.sources.includes(source)));
  }

  /** Run one volume plugin on one volume version. Never throws. */
  runVolume(p: LoadedPlugin, volume: PluginVolume): Promise<RunOutcome> {
    return this.runTask(p, {
      method: 'process',
      // A plain copy: the volume crosses to a worker by structured clone.
      arg: { ...volume, fields: { ...volume.fields }, members: volume.members.map((m) => ({ ...m })) },
      attempt: volume.attempt,
      bindings: { source: volume.source, volume: volume.key, volumeVersion: volume.version, attempt: volume.attempt },
    });
  }

  /** Run one plugin on one file. Never throws. */
  run(p: LoadedPlugin, file: PluginFile): Promise<RunOutcome> {
    return this.runTask(p, {
      method: 'process',
      // A plain copy: the file crosses to a worker by structured clone.
      arg: { ...file },
      attempt: file.attempt,
      bindings: { source: file.source, path: file.remotePath, attempt: file.attempt },
    });
  }

  /** Run one task of a plugin (any method taking a plain argument). Never throws. */
  async runTask(p: LoadedPlugin, task: PluginTask): Promise<RunOutcome> {
    const limit = this.#limits.get(p.name) as LimitFunction;
    const queued = performance.now();
    return limit(async () => {
      const log = this.#log.child({ plugin: p.name, ...task.bindings });
      const setupError = this.#setupErrors.get(p.name);
      if (setupError) return this.#setupFailure(p, setupError, queued);
      const pool = this.#pools.get(p.name);
      const outputs: EmittedOutput[] = [];
      let started = performance.now();
      let result: TaskResult;
      if (pool) {
        let host: PluginHost;
        try {
          host = await pool.acquire();
        } catch (thrown) {
          return this.#setupFailure(p, this.#setupFailed(p, thrown), queued);
        }
        started = performance.now();
        this.#observer.waited?.(p.name, started - queued);
        const runId = this.#nextRun++;
        this.#runLogs.set(runId, log);
        this.#track(p.name, +1);
        try {
          result = await host.runTask(runId, task.method, task.arg, task.attempt, {
            timeoutMs: p.timeoutMs,
            shutdown: this.#shutdown,
            onEmit: (o) => outputs.push(o),
          });
        } finally {
          this.#track(p.name, -1);
          this.#runLogs.delete(runId);
          pool.release(host);
        }
        if (host.dead) this.#observer.hostReplaced?.(p.name, replacedBecause(result));
      } else {
        this.#observer.waited?.(p.name, started - queued);
        this.#track(p.name, +1);
        try {
          result = await this.#runInProcess(p, task, log, outputs);
        } finally {
          this.#track(p.name, -1);
        }
      }
      return this.#outcome(p, result, log, started, outputs);
    });
  }

  #track(plugin: string, delta: number): void {
    const n = (this.#inFlight.get(plugin) ?? 0) + delta;
    this.#inFlight.set(plugin, n);
    this.#observer.inFlight?.(plugin, n);
  }

  async #runInProcess(p: LoadedPlugin, task: PluginTask, log: Logger, outputs: EmittedOutput[]): Promise<TaskResult> {
    const run = runSignal(this.#shutdown, p.timeoutMs);
    const signal = run.signal;
    const ctx = {
      ...this.#ctxBase(p),
      log,
      signal,
      attempt: task.attempt,
      emit: (o: EmittedOutput) => {
        outputs.push({ path: String(o.path), ...(o.kind !== undefined && { kind: String(o.kind) }) });
      },
    };
    try {
      const fn = (p.plugin as unknown as Record<string, unknown>)[task.method];
      if (typeof fn !== 'function') throw new Error(`plugin ${p.name} has no ${task.method}()`);
      await withTimeout(
        Promise.resolve().then(() => fn.call(p.plugin, task.arg, ctx)),
        p.timeoutMs,
        this.#shutdown,
      );
      return { kind: 'ok' };
    } catch (thrown) {
      const err = coerceError(thrown);
      if (err instanceof PluginTimeoutError)
        return this.#shutdown.aborted ? { kind: 'interrupted' } : { kind: 'timeout' };
      return { kind: 'error', error: { name: err.name, message: err.message, ...wireExtras(err) } };
    } finally {
      run.release();
    }
  }

  #setupFailure(p: LoadedPlugin, setupError: Error, started: number): RunOutcome {
    return failure(
      p.name,
      new PermanentError('POLLER_PLUGIN_SETUP_FAILED', `setup failed: ${setupError.message}`),
      started,
      [],
      true,
    );
  }

  #outcome(p: LoadedPlugin, r: TaskResult, log: Logger, started: number, outputs: EmittedOutput[]): RunOutcome {
    const durationMs = performance.now() - started;
    if (r.kind === 'ok') {
      log.info(
        { event: 'plugin.succeeded', durationMs: Math.round(durationMs), outputs: outputs.length },
        'plugin succeeded',
      );
      return { plugin: p.name, ok: true, permanent: false, durationMs, outputs };
    }
    const isolated = p.isolate !== 'none';
    const host = p.isolate === 'process' ? 'child process' : 'worker';
    let err: Error;
    switch (r.kind) {
      case 'timeout':
        err = new PluginTimeoutError(
          `timed out after ${p.timeoutMs} ms${isolated ? `; its ${host} was stopped if it did not give up` : ''}`,
        );
        break;
      case 'interrupted':
        err = new PluginTimeoutError('aborted by shutdown');
        break;
      case 'out-of-memory':
        err = new PermanentError(
          'POLLER_PLUGIN_OUT_OF_MEMORY',
          `ran out of memory (memoryLimit ${p.memoryLimitMb} MiB); the ${host} was replaced`,
        );
        break;
      case 'crashed':
        err = new TransientError('POLLER_PLUGIN_CRASHED', `its ${host} ended during the run (${r.detail}); replaced`);
        break;
      default:
        err = fromWire(r.error);
    }
    // By the flag, not the class: a plugin bundling its own copy of poller/plugin has its own PermanentError.
    const permanent = err instanceof PermanentError || (err as { retryable?: unknown }).retryable === false;
    log.warn(
      { event: 'plugin.failed', err, permanent, durationMs: Math.round(durationMs) },
      `plugin ${p.name} failed: ${err.message}`,
    );
    const outcome = failure(p.name, err, started, outputs, permanent);
    return r.kind === 'interrupted' || (this.#shutdown.aborted && r.kind !== 'out-of-memory')
      ? { ...outcome, permanent: false, interrupted: true }
      : outcome;
  }

  async teardown(timeoutMs = TEARDOWN_TIMEOUT_MS): Promise<void> {
    await Promise.all([...this.#pools.values()].map((pool) => pool.close(timeoutMs)));
    for (const p of [...this.#plugins].reverse()) {
      if (p.isolate !== 'none' || !p.plugin.teardown || this.#setupErrors.has(p.name)) continue;
      try {
        await withTimeout(Promise.resolve(p.plugin.teardown(this.#ctxBase(p) as never)), timeoutMs);
      } catch (thrown) {
        this.#log.warn(
          { event: 'plugin.teardown_failed', plugin: p.name, err: coerceError(thrown) },
          'plugin teardown failed',
        );
      }
    }
  }
}

function replacedBecause(r: TaskResult): 'timeout' | 'crashed' | 'out_of_memory' | 'interrupted' {
  if (r.kind === 'out-of-memory') return 'out_of_memory';
  if (r.kind === 'timeout') return 'timeout';
  if (r.kind === 'interrupted') return 'interrupted';
  return 'crashed';
}

function wireExtras(err: Error): { code?: string; retryable?: boolean } {
  const code = (err as { code?: unknown }).code;
  const retryable = (err as { retryable?: unknown }).retryable;
  return {
    ...(typeof code === 'string' && { code }),
    ...(err instanceof PermanentError ? { retryable: false } : typeof retryable === 'boolean' && { retryable }),
  };
}

/** An error that crossed from a host, rebuilt with what the ledger and the log need. */
function fromWire(w: WireError): Error {
  const err = new Error(w.message) as Error & { code?: string; retryable?: boolean };
  err.name = w.name;
  if (w.code !== undefined) err.code = w.code;
  if (w.retryable !== undefined) err.retryable = w.retryable;
  if (w.stack !== undefined) err.stack = w.stack;
  return err;
}

/** pino's own fields on a host's line; the rest is what the plugin logged. */
const PINO_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', RUN_BINDING]);

/** Log a line from a host again, through the logger of its run (plugin, source, path, attempt bound). */
function relogLine(line: string, pluginLog: Logger, runLogs: ReadonlyMap<number, Logger>): void {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  const runId = obj[RUN_BINDING];
  const target = (typeof runId === 'number' ? runLogs.get(runId) : undefined) ?? pluginLog;
  const level = pluginLog.levels.labels[Number(obj['level'])] ?? 'info';
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!PINO_FIELDS.has(k)) fields[k] = v;
  const log = target[level as 'info'];
  if (typeof log === 'function') log.call(target, fields, typeof obj['msg'] === 'string' ? obj['msg'] : '');
}

function failure(
  plugin: string,
  err: Error,
  started: number,
  outputs: EmittedOutput[],
  permanent: boolean,
): RunOutcome {
  return {
    plugin,
    ok: false,
    permanent,
    errorCode: errorCode(err) === 'POLLER_UNKNOWN' ? 'POLLER_PLUGIN_FAILED' : errorCode(err),
    message: err.message.split('\n')[0] || err.name,
    durationMs: performance.now() - started,
    outputs,
  };
}

function safeMatch(p: LoadedPlugin, matches: () => boolean, log: Logger): boolean {
  try {
    return matches();
  } catch (thrown) {
    log.warn(
      { event: 'plugin.match_failed', plugin: p.name, err: coerceError(thrown) },
      'plugin match function threw; skipping the plugin for this file',
    );
    return false;
  }
}

/** Resolve with `work`, or reject at the timeout or on `signal`, whichever comes first. */
async function withTimeout<T>(work: Promise<T>, timeoutMs: number, signal?: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PluginTimeoutError(`timed out after ${timeoutMs} ms`)), timeoutMs);
    if (signal) {
      onAbort = () => reject(new PluginTimeoutError('aborted by shutdown'));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  work.catch(() => undefined); // an abandoned run must not become an unhandled rejection
  try {
    return await Promise.race([work, guard]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
