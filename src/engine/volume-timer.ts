/**
 * The daemon's volume timer: quiet times run out between cycles (a source polled every 10 min
 * with `completeAfter: 3m`), so the volume stage of each source with `volumes:` also runs on a
 * timer, at a fraction of its quiet time. The stage claims in the ledger, so a run here and one
 * in a cycle (or in another process) never run one volume twice. One pass at a time.
 */
import type { Logger } from 'pino';
import type { SourceConfig } from '../config/load.js';
import { coerceError, errorCode } from '../errors.js';
import { runVolumeStage, type VolumeStageDeps } from './volume-stage.js';

/** The timer ticks at most this often, and at least this often when any quiet time is long. */
const MIN_TICK_MS = 1_000;
const MAX_TICK_MS = 30_000;

/** How often to look: a quarter of the shortest quiet time, within [1 s, 30 s]. */
export function volumeTickMs(sources: readonly Pick<SourceConfig, 'volumes' | 'enabled'>[]): number | undefined {
  const quiet = sources
    .filter((s) => s.enabled && s.volumes)
    .map((s) => s.volumes?.rules.completeAfterMs ?? MAX_TICK_MS * 4);
  if (quiet.length === 0) return undefined;
  return Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(Math.min(...quiet) / 4)));
}

export interface VolumeTimerOptions {
  /** The sources in force (they change on SIGHUP). */
  sources: () => readonly SourceConfig[];
  /** Run the volume stage of one source with the deps in force (the daemon holds them while it runs). */
  runStage: (src: SourceConfig, stage: typeof runVolumeStage) => Promise<unknown>;
  log: Logger;
  signal: AbortSignal;
}

export type { VolumeStageDeps };

export function startVolumeTimer(opts: VolumeTimerOptions): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const pass = async () => {
    for (const src of opts.sources()) {
      if (!src.enabled || !src.volumes || opts.signal.aborted) continue;
      try {
        await opts.runStage(src, runVolumeStage);
      } catch (thrown) {
        const err = coerceError(thrown);
        opts.log.warn(
          { event: 'volume.stage_failed', source: src.name, err: { code: errorCode(err), message: err.message } },
          `volume stage failed: ${err.message}`,
        );
      }
    }
  };
  const schedule = () => {
    const tick = volumeTickMs(opts.sources());
    if (opts.signal.aborted || tick === undefined) return;
    timer = setTimeout(() => {
      running = pass().finally(() => {
        running = undefined;
        schedule();
      });
    }, tick);
    timer.unref();
  };
  schedule();
  return {
    async stop() {
      clearTimeout(timer);
      await running;
    },
  };
}
