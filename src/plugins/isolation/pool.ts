/**
 * Plugin hosts off the main thread: one host is a worker thread (with V8 resource limits) or a
 * child process (with `--max-old-space-size`) running host.ts, one task at a time. The limits
 * are enforced from here: a run past its timeout is asked to abort, then its host is
 * terminated; a host that dies (out of memory, process.exit, a crash) ends its run with that
 * cause and is replaced on the next acquire.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FromHost, HostInit, TaskMessage, ToHost, WireError } from './protocol.js';
import { hostScriptUrl } from './runnable.js';

export type IsolationMode = 'worker' | 'process' | 'none';
export const ISOLATION_MODES: readonly IsolationMode[] = ['worker', 'process', 'none'];

/** How one task ended, as seen from outside the host. */
export type TaskResult =
  | { readonly kind: 'ok' }
  | { readonly kind: 'error'; readonly error: WireError }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'interrupted' }
  | { readonly kind: 'out-of-memory'; readonly detail: string }
  | { readonly kind: 'crashed'; readonly detail: string };

/** Why a host could not start: its setup failed, or the host died while starting. */
export class HostStartError extends Error {
  readonly wire: WireError;
  constructor(wire: WireError) {
    super(wire.message);
    this.wire = wire;
  }
}

/** A run asked to abort (timeout, shutdown) has this long to settle before its host is terminated. */
export const ABORT_GRACE_MS = 500;
// Node's default when V8 reports the heap exhausted in a child: the only trace is on stderr.
const OOM_TEXT = /heap out of memory|Allocation failed|ERR_WORKER_OUT_OF_MEMORY/;
const STDERR_TAIL_CHARS = 4096;

interface ExitInfo {
  outOfMemory: boolean;
  detail: string;
}

/** The transport under a host: a worker thread or a child process. */
interface Endpoint {
  send(m: ToHost): void;
  onMessage(h: (m: FromHost) => void): void;
  onExit(h: (info: ExitInfo) => void): void;
  /** Keep the poller's event loop alive while a task runs, not while the host is idle. */
  ref(on: boolean): void;
  kill(): void;
}

function workerEndpoint(memoryLimitMb: number): Endpoint {
  const w = new Worker(new URL(hostScriptUrl()), {
    resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb },
    // A worker's default stdout/stderr pipe into the poller's: plugin console output lands where it did in process.
  });
  let error: (Error & { code?: string }) | undefined;
  w.on('error', (err) => {
    error = err;
  });
  return {
    send: (m) => w.postMessage(m),
    onMessage: (h) => w.on('message', h),
    onExit: (h) =>
      w.on('exit', (code) =>
        h({
          outOfMemory: error?.code === 'ERR_WORKER_OUT_OF_MEMORY',
          detail: error ? `${error.message.split('\n')[0]}` : `the worker exited with code ${code}`,
        }),
      ),
    ref: (on) => (on ? w.ref() : w.unref()),
    kill: () => void w.terminate(),
  };
}

function childEndpoint(memoryLimitMb: number): Endpoint {
  const child: ChildProcess = fork(fileURLToPath(hostScriptUrl()), [], {
    execArgv: [`--max-old-space-size=${memoryLimitMb}`],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => {
    process.stderr.write(d);
    tail = (tail + d.toString('utf8')).slice(-STDERR_TAIL_CHARS);
  });
  child.on('error', () => undefined); // a failed spawn shows as an exit
  return {
    send: (m) => {
      if (child.connected) child.send(m);
    },
    onMessage: (h) => child.on('message', (m) => h(m as FromHost)),
    onExit: (h) =>
      child.on('exit', (code, signal) =>
        h({
          outOfMemory: OOM_TEXT.test(tail),
          detail: signal ? `the child process was killed by ${signal}` : `the child process exited with code ${code}`,
        }),
      ),
    ref: (on) => {
      if (on) {
        child.ref();
        child.channel?.ref();
      } else {
        child.unref();
        child.channel?.unref();
      }
    },
    kill: () => child.kill('SIGKILL'),
  };
}

interface CurrentTask {
  readonly id: number;
  done(error: WireError | undefined): void;
  emit(output: { path: string; kind?: string }): void;
  exited(info: ExitInfo): void;
}

export interface RunTaskOptions {
  readonly timeoutMs: number;
  /** Aborts on shutdown: the run is asked to stop, then its host is terminated. */
  readonly shutdown: AbortSignal;
  onEmit(output: { path: string; kind?: string }): void;
}

/** One worker thread or child process hosting one plugin. */
export class PluginHost {
  readonly #endpoint: Endpoint;
  readonly #onLog: (line: string) => void;
  #current: CurrentTask | undefined;
  #exit: ExitInfo | undefined;
  readonly #exitListeners: Array<(info: ExitInfo) => void> = [];
  #killedByUs = false;
  #waiters: Array<(m: FromHost) => void> = [];

  constructor(mode: 'worker' | 'process', memoryLimitMb: number, onLog: (line: string) => void) {
    this.#endpoint = mode === 'worker' ? workerEndpoint(memoryLimitMb) : childEndpoint(memoryLimitMb);
    this.#onLog = onLog;
    this.#endpoint.onMessage((m) => this.#message(m));
    this.#endpoint.onExit((info) => {
      this.#exit = info;
      this.#current?.exited(info);
      for (const l of this.#exitListeners.splice(0)) l(info);
    });
    this.#endpoint.ref(false);
  }

  /** The host is gone (or going): never give it another task. */
  get dead(): boolean {
    return this.#exit !== undefined || this.#killedByUs;
  }

  /** Called once when the host has ended, for whatever reason. */
  onEnd(h: () => void): void {
    if (this.#exit) h();
    else this.#exitListeners.push(h);
  }

  #message(m: FromHost): void {
    switch (m.type) {
      case 'log':
        this.#onLog(m.line);
        return;
      case 'emit':
        if (this.#current?.id === m.id) this.#current.emit(m.output);
        return;
      case 'done':
        if (this.#current?.id === m.id) this.#current.done(m.error);
        return;
      default:
        for (const w of this.#waiters.splice(0)) w(m);
    }
  }

  #next(types: readonly FromHost['type'][], timeoutMs: number): Promise<FromHost | ExitInfo | 'timeout'> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      const finish = (v: FromHost | ExitInfo) => {
        clearTimeout(timer);
        resolve(v);
      };
      if (this.#exit) return finish(this.#exit);
      this.#exitListeners.push(finish);
      const wait = (m: FromHost) => {
        if (types.includes(m.type)) finish(m);
        else this.#waiters.push(wait);
      };
      this.#waiters.push(wait);
    });
  }

  /** Load the plugin and run its setup; rejects with HostStartError when either fails. */
  async start(init: HostInit): Promise<void> {
    this.#endpoint.ref(true);
    try {
      this.#endpoint.send(init);
      // Past setup's own timeout, a host that spins in setup is given up here.
      const r = await this.#next(['ready', 'setup-failed'], init.setupTimeoutMs + ABORT_GRACE_MS);
      if (r === 'timeout') {
        this.kill();
        throw new HostStartError({ name: 'Error', message: `setup timed out after ${init.setupTimeoutMs} ms` });
      }
      if ('type' in r) {
        if (r.type === 'ready') return;
        if (r.type === 'setup-failed') {
          this.kill();
          throw new HostStartError(r.error);
        }
      } else {
        throw new HostStartError({
          name: 'Error',
          message: r.outOfMemory ? `ran out of memory while starting: ${r.detail}` : r.detail,
        });
      }
    } finally {
      this.#endpoint.ref(false);
    }
  }

  /** Run one task (`id`: unique per runner, it tags the run's log lines). Never rejects: every way a run can end is a TaskResult. */
  runTask(id: number, method: string, arg: unknown, attempt: number, opts: RunTaskOptions): Promise<TaskResult> {
    this.#endpoint.ref(true);
    return new Promise<TaskResult>((resolve) => {
      let cut: 'timeout' | 'shutdown' | undefined;
      let graceTimer: NodeJS.Timeout | undefined;
      const finish = (r: TaskResult) => {
        if (this.#current?.id !== id) return;
        this.#current = undefined;
        clearTimeout(timer);
        clearTimeout(graceTimer);
        opts.shutdown.removeEventListener('abort', onShutdown);
        this.#endpoint.ref(false);
        resolve(r);
      };
      const cutResult = (): TaskResult | undefined =>
        cut === 'timeout' ? { kind: 'timeout' } : cut === 'shutdown' ? { kind: 'interrupted' } : undefined;
      const cutShort = (why: 'timeout' | 'shutdown') => {
        if (cut) return;
        cut = why;
        this.#endpoint.send({ type: 'abort', id, reason: why === 'timeout' ? 'timed out' : 'shutting down' });
        // A plugin that spins never reads the abort: terminate its host.
        graceTimer = setTimeout(() => {
          this.kill();
          finish(cutResult() as TaskResult);
        }, ABORT_GRACE_MS);
      };
      const onShutdown = () => cutShort('shutdown');
      const timer = setTimeout(() => cutShort('timeout'), opts.timeoutMs);
      this.#current = {
        id,
        emit: opts.onEmit,
        done: (error) => finish(cutResult() ?? (error ? { kind: 'error', error } : { kind: 'ok' })),
        exited: (info) =>
          finish(
            cutResult() ??
              (info.outOfMemory
                ? { kind: 'out-of-memory', detail: info.detail }
                : { kind: 'crashed', detail: info.detail }),
          ),
      };
      if (this.#exit) return this.#current.exited(this.#exit);
      if (opts.shutdown.aborted) return finish({ kind: 'interrupted' });
      opts.shutdown.addEventListener('abort', onShutdown, { once: true });
      const task: TaskMessage = { type: 'run', id, method, arg, attempt };
      this.#endpoint.send(task);
    });
  }

  /** Run the plugin's teardown (bounded), then end the host. */
  async close(timeoutMs: number): Promise<void> {
    if (this.#exit) return;
    this.#endpoint.ref(true);
    this.#endpoint.send({ type: 'teardown', timeoutMs });
    await this.#next(['torn-down'], timeoutMs + ABORT_GRACE_MS);
    this.kill();
  }

  kill(): void {
    if (this.#killedByUs || this.#exit) return;
    this.#killedByUs = true;
    this.#endpoint.kill();
  }
}

/** Hosts of one plugin, started on demand; the caller bounds how many are taken at once. */
export class HostPool {
  readonly #spawn: () => PluginHost;
  readonly #init: HostInit;
  readonly #idle: PluginHost[] = [];
  readonly #all = new Set<PluginHost>();

  constructor(spawn: () => PluginHost, init: HostInit) {
    this.#spawn = spawn;
    this.#init = init;
  }

  async acquire(): Promise<PluginHost> {
    for (let h = this.#idle.pop(); h; h = this.#idle.pop()) if (!h.dead) return h;
    const host = this.#spawn();
    this.#all.add(host);
    host.onEnd(() => this.#all.delete(host));
    await host.start(this.#init);
    return host;
  }

  release(host: PluginHost): void {
    if (!host.dead) this.#idle.push(host);
  }

  /** Tear down every host (teardown once per host, in parallel, bounded). */
  async close(timeoutMs: number): Promise<void> {
    this.#idle.length = 0;
    await Promise.all([...this.#all].map((h) => h.close(timeoutMs)));
    this.#all.clear();
  }
}
