/**
 * The plugin host: the entry point of a plugin's worker thread or child process. It loads the
 * plugin module once, runs `setup` once, then runs one task at a time as the runner asks, and
 * sends back log lines, emitted outputs and the result. Everything it sends is a plain object
 * (see protocol.ts). The runner enforces limits from outside (terminate, kill): nothing here
 * has to behave for the poller to stay up.
 */
import { mkdir } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import type { LevelWithSilent, Logger } from 'pino';
import { coerceError } from '../../errors.js';
import { createLogger } from '../../observe/logger.js';
import type { Plugin } from '../api.js';
import { type FromHost, type HostInit, RUN_BINDING, type TaskMessage, type ToHost, toWireError } from './protocol.js';

interface Channel {
  send(message: FromHost): void;
  onMessage(handler: (message: ToHost) => void): void;
}

function openChannel(): Channel {
  const port = parentPort;
  if (port) {
    return {
      send: (m) => port.postMessage(m),
      onMessage: (h) => port.on('message', h),
    };
  }
  const send = process.send?.bind(process);
  if (!send) throw new Error('the plugin host runs only as a worker thread or a forked child process');
  // The poller is gone (killed, crashed): a child must not outlive it.
  process.on('disconnect', () => process.exit(0));
  return {
    send: (m) => {
      if (process.connected) send(m);
    },
    onMessage: (h) => process.on('message', (m) => h(m as ToHost)),
  };
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  work.catch(() => undefined);
  return Promise.race([work, guard]).finally(() => clearTimeout(timer));
}

function isPlugin(value: unknown): value is Plugin {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { name?: unknown }).name === 'string' &&
    typeof (value as { process?: unknown }).process === 'function'
  );
}

const channel = openChannel();
const hostAbort = new AbortController();
const runs = new Map<number, AbortController>();
let plugin: Plugin | undefined;
let log: Logger | undefined;
let base: { options: unknown; stateDir: string } | undefined;

// A promise the plugin dropped must not end the host (and every later run with it): the same
// rule as in the poller's own process.
process.on('unhandledRejection', (reason) => {
  log?.warn({ event: 'plugin.unhandled_rejection', err: coerceError(reason) }, 'a promise the plugin dropped failed');
});

async function init(m: HostInit): Promise<void> {
  log = createLogger({
    level: m.logLevel as LevelWithSilent,
    destination: {
      write(line: string) {
        // Which run a line belongs to is in its bindings; the runner sorts that out.
        channel.send({ type: 'log', line });
      },
    },
  });
  try {
    const mod = (await import(m.moduleUrl)) as { default?: unknown };
    if (!isPlugin(mod.default)) throw new Error(`${m.moduleUrl} does not default-export a plugin`);
    plugin = mod.default;
    const options = plugin.options ? plugin.options.parse(m.rawOptions) : m.rawOptions;
    base = { options, stateDir: m.stateDir };
    await mkdir(m.stateDir, { recursive: true });
    const ctx = { log, options, stateDir: m.stateDir, signal: hostAbort.signal };
    await withTimeout(Promise.resolve(plugin.setup?.(ctx as never)), m.setupTimeoutMs, 'setup');
    channel.send({ type: 'ready' });
  } catch (thrown) {
    channel.send({ type: 'setup-failed', error: toWireError(coerceError(thrown)) });
  }
}

async function run(m: TaskMessage): Promise<void> {
  const controller = new AbortController();
  runs.set(m.id, controller);
  // The host's abort reaches this run through a listener removed when it ends (AbortSignal.any
  // per run left a reference in the long-lived host signal each time).
  const onHostAbort = (): void => controller.abort(hostAbort.signal.reason);
  if (hostAbort.signal.aborted) onHostAbort();
  else hostAbort.signal.addEventListener('abort', onHostAbort, { once: true });
  try {
    if (!plugin || !base || !log) throw new Error('the plugin host received a run before it was set up');
    const fn = (plugin as unknown as Record<string, unknown>)[m.method];
    if (typeof fn !== 'function') throw new Error(`plugin ${plugin.name} has no ${m.method}()`);
    const ctx = {
      log: log.child({ [RUN_BINDING]: m.id }),
      options: base.options,
      stateDir: base.stateDir,
      signal: controller.signal,
      attempt: m.attempt,
      emit: (o: { path: string; kind?: string }) => {
        channel.send({
          type: 'emit',
          id: m.id,
          output: { path: String(o.path), ...(o.kind !== undefined && { kind: String(o.kind) }) },
        });
      },
    };
    await fn.call(plugin, m.arg, ctx);
    channel.send({ type: 'done', id: m.id });
  } catch (thrown) {
    channel.send({ type: 'done', id: m.id, error: toWireError(coerceError(thrown)) });
  } finally {
    runs.delete(m.id);
    hostAbort.signal.removeEventListener('abort', onHostAbort);
  }
}

async function teardown(timeoutMs: number): Promise<void> {
  hostAbort.abort(new Error('shutting down'));
  try {
    if (plugin?.teardown && base && log) {
      const ctx = { log, options: base.options, stateDir: base.stateDir, signal: hostAbort.signal };
      await withTimeout(Promise.resolve(plugin.teardown(ctx as never)), timeoutMs, 'teardown');
    }
  } catch (thrown) {
    log?.warn({ event: 'plugin.teardown_failed', err: coerceError(thrown) }, 'plugin teardown failed');
  }
  channel.send({ type: 'torn-down' });
}

channel.onMessage((m) => {
  switch (m.type) {
    case 'init':
      void init(m);
      break;
    case 'run':
      void run(m);
      break;
    case 'abort':
      runs.get(m.id)?.abort(new Error(m.reason));
      break;
    case 'teardown':
      void teardown(m.timeoutMs);
      break;
  }
});
