/**
 * The stop of the daemon: no new cycle, no new transfer; transfers under way get the grace
 * period, then are aborted (their partial files stay for resume); a watchdog ends a shutdown
 * that hangs past it.
 */
import type { Logger } from 'pino';
import { formatDurationMs } from '../../util/duration.js';

/** Past the grace period, this long for aborts, teardown and the ledger; then the process is ended (under systemd's TimeoutStopSec=45s with the default 30 s grace). */
const WATCHDOG_EXTRA_MS = 10_000;

export interface DaemonShutdown {
  /** Aborted at the stop: no new cycle starts. */
  readonly scheduling: AbortSignal;
  /** Aborted at the stop too: cycles under way start no new transfer (the app's shutdown aborts the rest). */
  readonly transfers: AbortSignal;
  /** Stop now: `running` names the cycles still under way, for the log. */
  begin(signal: NodeJS.Signals, running: () => string[]): void;
  /** The work that the grace period is for has ended: transfers are no longer aborted at its end. */
  endGrace(): void;
}

export function createShutdown(log: Logger, graceMs: number, abortAll: AbortController): DaemonShutdown {
  const scheduling = new AbortController();
  const transfers = new AbortController();
  let grace: NodeJS.Timeout | undefined;
  return {
    scheduling: scheduling.signal,
    transfers: transfers.signal,
    begin(signal, running) {
      log.info(
        { event: 'daemon.stopping', signal, graceMs, running: running() },
        `${signal}: stopping; transfers under way get ${formatDurationMs(graceMs)}`,
      );
      const watchdog = setTimeout(() => {
        log.fatal({ event: 'daemon.shutdown_hung' }, 'shutdown did not finish in time; exiting');
        process.exit(1);
      }, graceMs + WATCHDOG_EXTRA_MS);
      watchdog.unref();
      scheduling.abort();
      transfers.abort();
      grace = setTimeout(() => {
        log.warn(
          { event: 'daemon.grace_expired', running: running() },
          'grace period over: aborting transfers (partial files stay for resume)',
        );
        abortAll.abort(new Error('grace period over'));
      }, graceMs);
    },
    endGrace() {
      clearTimeout(grace);
    },
  };
}
