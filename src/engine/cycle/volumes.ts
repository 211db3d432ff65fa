/**
 * Volumes: after the files of the cycle landed (and their file plugins ran), the source's radar
 * volumes are joined, closed and run (engine/volume-stage.ts). Quiet times run out whether or not
 * the source answered, so this runs after a failed listing too.
 */
import { coerceError, errorCode } from '../../errors.js';
import { runVolumeStage } from '../volume-stage.js';
import type { CycleContext } from './context.js';

export async function volumeStage(ctx: CycleContext): Promise<void> {
  const { src, opts } = ctx;
  // A graceful stop starts no volume plugin: the next start (or another process) runs what is due.
  if (!src.volumes || opts.dryRun || opts.signal.aborted || opts.drainSignal?.aborted) return;
  try {
    ctx.summary.volumes = await runVolumeStage(
      src,
      { ...ctx.deps, events: ctx.emit },
      opts.drainSignal ? AbortSignal.any([opts.signal, opts.drainSignal]) : opts.signal,
    );
  } catch (thrown) {
    if (opts.signal.aborted) return;
    const err = coerceError(thrown);
    // The ledger holds what is left; the next cycle (or the volume timer) takes it up again.
    ctx.log.error(
      { event: 'volume.stage_failed', err: { code: errorCode(err), message: err.message } },
      `volume stage failed: ${err.message}`,
    );
  }
}
