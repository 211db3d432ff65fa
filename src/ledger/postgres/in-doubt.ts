/** Writes whose commit went unanswered because the primary failed during them (pool.ts). */
import { errorCode } from '../../errors.js';

/** The code of a write whose commit went unanswered. */
export const IN_DOUBT = 'POLLER_LEDGER_CONNECTION_LOST';

export function isInDoubt(err: unknown): boolean {
  return errorCode(err) === IN_DOUBT;
}

/**
 * Runs a write once more, on the new primary, when its commit went unanswered. Only for writes
 * guarded by their claim or idempotent: after a commit that did happen, the repeat changes
 * nothing (a guarded row reads as claim-lost, which the engine already handles).
 */
export async function inDoubtAgain<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (!isInDoubt(err)) throw err;
    return await write();
  }
}
