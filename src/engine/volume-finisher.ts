/**
 * Records volume outcomes as their plugins end, without a write per volume: the first outcome is
 * written at once, and those that end while a write is in flight are written together by the
 * next one. A slow or hanging volume holds no other volume's success unrecorded (a kill then
 * would run that volume again elsewhere), and a batch whose plugins end together costs one or
 * two ledger calls instead of one per volume.
 */
import type { VolumeLedger, VolumeResult, VolumeState } from '../ledger/volume-ledger.js';

type Outcome = VolumeState | 'claim-lost';

interface Pending {
  readonly result: VolumeResult;
  resolve(state: Outcome): void;
  reject(err: unknown): void;
}

export function volumeFinisher(
  vl: Pick<VolumeLedger, 'finishVolumes'>,
  owner: string,
  now: () => number,
): (result: VolumeResult) => Promise<Outcome> {
  let queue: Pending[] = [];
  let writing = false;
  const drain = async () => {
    writing = true;
    try {
      // Bounded: each round takes what queued during the previous one; a batch is at most a claim's.
      while (queue.length > 0) {
        const batch = queue;
        queue = [];
        try {
          const states = await vl.finishVolumes(
            batch.map((p) => p.result),
            owner,
            now(),
          );
          for (const [i, p] of batch.entries()) p.resolve(states[i] ?? 'claim-lost');
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      writing = false;
    }
  };
  return (result) =>
    new Promise<Outcome>((resolve, reject) => {
      queue.push({ result, resolve, reject });
      if (!writing) void drain();
    });
}
