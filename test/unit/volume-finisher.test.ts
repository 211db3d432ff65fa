import { describe, expect, it } from 'vitest';
import { volumeFinisher } from '../../src/engine/volume-finisher.js';
import type { VolumeResult, VolumeState } from '../../src/ledger/volume-ledger.js';

/** A ledger side that records each finishVolumes call and answers when released. */
function recordingLedger() {
  const calls: number[][] = [];
  const gates: Array<() => void> = [];
  return {
    calls,
    release: () => gates.shift()?.(),
    ledger: {
      async finishVolumes(results: readonly VolumeResult[]): Promise<Array<VolumeState | 'claim-lost'>> {
        calls.push(results.map((r) => r.id));
        await new Promise<void>((resolve) => gates.push(resolve));
        return results.map((r) => (r.id === 3 ? 'claim-lost' : 'processed'));
      },
    },
  };
}

const result = (id: number): VolumeResult => ({ id, outcomes: [] });
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('volume finisher', () => {
  it('writes the first outcome at once and those that end meanwhile together; each gets its own state', async () => {
    const l = recordingLedger();
    const finish = volumeFinisher(l.ledger, 'me', () => 0);
    const first = finish(result(1));
    await tick();
    expect(l.calls).toEqual([[1]]);
    const rest = [finish(result(2)), finish(result(3)), finish(result(4))];
    await tick();
    expect(l.calls).toEqual([[1]]);
    l.release();
    expect(await first).toBe('processed');
    await tick();
    expect(l.calls).toEqual([[1], [2, 3, 4]]);
    l.release();
    expect(await Promise.all(rest)).toEqual(['processed', 'claim-lost', 'processed']);
  });

  it('a volume whose plugins never end holds no other outcome back', async () => {
    const l = recordingLedger();
    const finish = volumeFinisher(l.ledger, 'me', () => 0);
    const never = new Promise<VolumeResult>(() => undefined).then(finish);
    const done = finish(result(5));
    await tick();
    l.release();
    expect(await done).toBe('processed');
    expect(l.calls).toEqual([[5]]);
    void never;
  });

  it('a failed write rejects the outcomes of its batch only', async () => {
    let n = 0;
    const finish = volumeFinisher(
      {
        async finishVolumes(results) {
          if (n++ === 0) throw new Error('ledger down');
          return results.map(() => 'processed' as const);
        },
      },
      'me',
      () => 0,
    );
    await expect(finish(result(1))).rejects.toThrow('ledger down');
    expect(await finish(result(2))).toBe('processed');
  });
});
