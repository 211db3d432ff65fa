/**
 * Runs plugins on landed files, isolated: each run gets a timeout and an AbortSignal; a throw,
 * a rejection or a hang becomes a recorded outcome and never reaches the engine. A plugin that
 * ignores its signal is abandoned at the timeout (its promise is left to settle on its own).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from 'pino';
import { coerceError, errorCode, PermanentError } from '../errors.js';
import type { EmittedOutput, PluginFile } from './api.js';
import type { LoadedPlugin } from './loader.js';

export interface RunOutcome {
  plugin: string;
  ok: boolean;
  /** The run failed and retrying will not help (the plugin threw a PermanentError). */
  permanent: boolean;
  /** The run was cut short by shutdown, not failed by the plugin. */
  interrupted?: boolean;
  errorCode?: string;
  message?: string;
  durationMs: number;
  outputs: EmittedOutput[];
}

export class PluginTimeoutError extends Error {
  readonly code = 'POLLER_PLUGIN_TIMEOUT';
}

export class PluginRunner {
  readonly #plugins: readonly LoadedPlugin[];
  readonly #log: Logger;
  readonly #stateDir: string;
  readonly #shutdown: AbortSignal;
  readonly #limits = new Map<string, LimitFunction>();
  /** Plugins whose setup failed: every file fails for them with this error, until restart. */
  readonly #setupErrors = new Map<string, Error>();
  #setUp = false;

  constructor(opts: { plugins: readonly LoadedPlugin[]; log: Logger; stateDir: string; shutdownSignal: AbortSignal }) {
    this.#plugins = opts.plugins;
    this.#log = opts.log;
    this.#stateDir = opts.stateDir;
    this.#shutdown = opts.shutdownSignal;
    for (const p of this.#plugins) this.#limits.set(p.name, pLimit(p.concurrency));
  }

  get plugins(): readonly LoadedPlugin[] {
    return this.#plugins;
  }

  #ctxBase(p: LoadedPlugin) {
    return {
      log: this.#log.child({ plugin: p.name }),
      options: p.options,
      stateDir: path.join(this.#stateDir, p.name),
      signal: this.#shutdown,
    };
  }

  /** Run every plugin's setup once. A failing setup is logged and recorded per file, not fatal. */
  async setup(): Promise<void> {
    if (this.#setUp) return;
    this.#setUp = true;
    for (const p of this.#plugins) {
      const ctx = this.#ctxBase(p);
      try {
        await mkdir(ctx.stateDir, { recursive: true });
        await withTimeout(Promise.resolve(p.plugin.setup?.(ctx as never)), p.timeoutMs, this.#shutdown);
      } catch (thrown) {
        const err = coerceError(thrown);
        this.#setupErrors.set(p.name, err);
        this.#log.error(
          { event: 'plugin.setup_failed', plugin: p.name, err },
          `plugin ${p.name}: setup failed: ${err.message}`,
        );
      }
    }
  }

  /** Plugins that want this file (by source and match). */
  pluginsFor(file: PluginFile): LoadedPlugin[] {
    return this.#plugins.filter(
      (p) => (!p.sources || p.sources.includes(file.source)) && safeMatch(p, file, this.#log),
    );
  }

  /** Run one plugin on one file. Never throws. */
  async run(p: LoadedPlugin, file: PluginFile): Promise<RunOutcome> {
    const limit = this.#limits.get(p.name) as LimitFunction;
    return limit(async () => {
      const started = performance.now();
      const outputs: EmittedOutput[] = [];
      const log = this.#log.child({
        plugin: p.name,
        source: file.source,
        path: file.remotePath,
        attempt: file.attempt,
      });
      const setupError = this.#setupErrors.get(p.name);
      if (setupError) {
        return failure(
          p.name,
          new PermanentError('POLLER_PLUGIN_SETUP_FAILED', `setup failed: ${setupError.message}`),
          started,
          outputs,
          true,
        );
      }
      const signal = AbortSignal.any([this.#shutdown, AbortSignal.timeout(p.timeoutMs)]);
      const ctx = {
        ...this.#ctxBase(p),
        log,
        signal,
        attempt: file.attempt,
        emit: (o: EmittedOutput) => {
          outputs.push({ path: String(o.path), ...(o.kind !== undefined && { kind: String(o.kind) }) });
        },
      };
      try {
        await withTimeout(
          Promise.resolve().then(() => p.plugin.process(file, ctx as never)),
          p.timeoutMs,
          this.#shutdown,
        );
        const durationMs = performance.now() - started;
        log.info(
          { event: 'plugin.succeeded', durationMs: Math.round(durationMs), outputs: outputs.length },
          'plugin succeeded',
        );
        return { plugin: p.name, ok: true, permanent: false, durationMs, outputs };
      } catch (thrown) {
        const err = coerceError(thrown);
        // By the flag, not the class: a plugin bundling its own copy of poller/plugin has its own PermanentError.
        const permanent = err instanceof PermanentError || (err as { retryable?: unknown }).retryable === false;
        log.warn(
          { event: 'plugin.failed', err, permanent, durationMs: Math.round(performance.now() - started) },
          `plugin ${p.name} failed: ${err.message}`,
        );
        const outcome = failure(p.name, err, started, outputs, permanent);
        return this.#shutdown.aborted ? { ...outcome, permanent: false, interrupted: true } : outcome;
      }
    });
  }

  async teardown(timeoutMs = 10_000): Promise<void> {
    for (const p of [...this.#plugins].reverse()) {
      if (!p.plugin.teardown || this.#setupErrors.has(p.name)) continue;
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

function safeMatch(p: LoadedPlugin, file: PluginFile, log: Logger): boolean {
  try {
    return p.matches(file);
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
