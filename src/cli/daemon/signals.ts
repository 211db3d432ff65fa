/**
 * SIGTERM/SIGINT stop the daemon (a second one aborts transfers at once); SIGHUP reloads the
 * config, one reload after another, none once a stop has begun.
 */
import type { Logger } from 'pino';
import type { Releasers } from '../releasers.js';
import { logReloadFailure } from './reload.js';

export interface DaemonSignals {
  /** Resolves with the first stop signal. */
  readonly stopped: Promise<NodeJS.Signals>;
  /** What SIGHUP runs; until it is set (during start-up) SIGHUP is ignored. */
  onReload(reload: () => Promise<void>): void;
  /** Resolves once the reload under way (if any) has ended. */
  reloadsSettled(): Promise<void>;
}

/**
 * Listen from now on. The handlers stay until the last releaser but the application's, so a
 * second signal still aborts a slow shutdown; the release logs `daemon.stopped`.
 */
export function listenForSignals(log: Logger, shutdown: AbortController, releasers: Releasers): DaemonSignals {
  let resolveStopped: (signal: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    resolveStopped = resolve;
  });
  let stopSignal: NodeJS.Signals | undefined;
  let reload: (() => Promise<void>) | undefined;
  let reloading: Promise<void> = Promise.resolve();
  const onStop = (signal: NodeJS.Signals) => {
    if (stopSignal !== undefined) {
      // A second signal: do not wait out the grace period.
      log.warn({ event: 'daemon.aborting', signal }, 'second signal: aborting transfers now');
      shutdown.abort(new Error(`${signal} received twice`));
      return;
    }
    stopSignal = signal;
    resolveStopped(signal);
  };
  const onHup = () => {
    const run = reload;
    if (stopSignal !== undefined || run === undefined) return;
    reloading = reloading.then(run).catch((err: unknown) => logReloadFailure(log, err));
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);
  releasers.add(() => {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHup);
    log.info({ event: 'daemon.stopped' }, 'poller stopped');
  });
  return {
    stopped,
    onReload(run) {
      reload = run;
    },
    reloadsSettled: () => reloading,
  };
}
