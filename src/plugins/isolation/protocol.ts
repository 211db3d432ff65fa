/**
 * Messages between the runner (main thread) and a plugin host (a worker thread or a child
 * process). Every message is a plain object that survives structured cloning (worker
 * postMessage, child IPC with `serialization: 'advanced'`), so a host can run any method of a
 * plugin with any plain argument: `process(file, ctx)` today, a volume of files tomorrow.
 */

/** The log binding that tells the runner which run a host's log line belongs to; removed before re-logging. */
export const RUN_BINDING = 'pollerRun';

/** What a host needs to load and set up one plugin. */
export interface HostInit {
  readonly type: 'init';
  /** URL of the plugin module; its default export is the plugin. */
  readonly moduleUrl: string;
  /** Name in the ledger and logs (the config's `name`, else the plugin's own). */
  readonly name: string;
  /** The config's `options`, as written: the host validates them with the plugin's own schema. */
  readonly rawOptions: unknown;
  readonly stateDir: string;
  readonly logLevel: string;
  /** Bound on setup; the same as a run's timeout. */
  readonly setupTimeoutMs: number;
}

/** One unit of work: call `plugin[method](arg, ctx)` with `ctx.attempt = attempt`. */
export interface TaskMessage {
  readonly type: 'run';
  readonly id: number;
  readonly method: string;
  readonly arg: unknown;
  readonly attempt: number;
}

export type ToHost =
  | HostInit
  | TaskMessage
  | { readonly type: 'abort'; readonly id: number; readonly reason: string }
  | { readonly type: 'teardown'; readonly timeoutMs: number };

/** An error as it crosses the boundary: what the runner records, nothing that needs a class. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  /** false: retrying will not help (a PermanentError, or any error with `retryable: false`). */
  readonly retryable?: boolean;
  readonly stack?: string;
}

export type FromHost =
  | { readonly type: 'ready' }
  | { readonly type: 'setup-failed'; readonly error: WireError }
  /** A pino line of `ctx.log`, already JSON; `id` is the run it belongs to (absent: setup/teardown). */
  | { readonly type: 'log'; readonly id?: number; readonly line: string }
  | { readonly type: 'emit'; readonly id: number; readonly output: { path: string; kind?: string } }
  | { readonly type: 'done'; readonly id: number; readonly error?: WireError }
  | { readonly type: 'torn-down' };

export function toWireError(err: Error): WireError {
  const code = (err as { code?: unknown }).code;
  const retryable = (err as { retryable?: unknown }).retryable;
  return {
    name: err.name,
    message: err.message,
    ...(typeof code === 'string' && { code }),
    ...(typeof retryable === 'boolean' && { retryable }),
    ...(err.stack !== undefined && { stack: err.stack }),
  };
}
