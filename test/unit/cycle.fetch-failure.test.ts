import { describe, expect, it } from 'vitest';
import { decideFetchFailure, type FetchFailureInput } from '../../src/engine/cycle/fetch-failure.js';
import {
  ChangedError,
  NotFoundError,
  PermanentError,
  SourceError,
  ThrottledError,
  TransientError,
} from '../../src/errors.js';

const policy = { maxAttempts: 5, retryBaseMs: 60_000, retryMaxMs: 3_600_000, random: () => 0.5 };
const at = (err: Error, over: Partial<FetchFailureInput> = {}): FetchFailureInput => ({
  err,
  stopped: false,
  attempt: 1,
  fetchAttempts: 0,
  nowMs: 1_000_000,
  ...over,
});
const transient = new TransientError('POLLER_FTP_CONNECTION_LOST', 'reset');

describe('decideFetchFailure', () => {
  it('gives the claim back when the cycle stopped, whatever the error', () => {
    expect(
      decideFetchFailure(at(new SourceError('POLLER_FTP_LOGIN_REJECTED', 'x'), { stopped: true }), policy),
    ).toEqual({ action: 'release', changed: false });
    expect(decideFetchFailure(at(transient, { stopped: true }), policy)).toEqual({ action: 'release', changed: false });
  });

  it('pauses the source on a SourceError, recording an uncounted failure due now', () => {
    const d = decideFetchFailure(at(new SourceError('POLLER_LANDING_NO_SPACE', 'full')), policy);
    expect(d).toEqual({
      action: 'pause',
      failure: {
        errorCode: 'POLLER_LANDING_NO_SPACE',
        message: 'full',
        nextRetryMs: 1_000_000,
        quarantine: false,
        notCounted: true,
      },
    });
  });

  it('gives the claim back, changed, when the remote file moved under the download (a ChangedError, any code)', () => {
    const grew = new ChangedError('POLLER_HTTP_CHANGED', 'etag moved');
    expect(decideFetchFailure(at(grew, { attempt: 3, fetchAttempts: 9 }), policy)).toEqual({
      action: 'release',
      changed: true,
    });
    // The same code as a plain TransientError is an ordinary failure: the kind decides, not the code.
    const plain = new TransientError('POLLER_HTTP_CHANGED', 'etag moved');
    expect(decideFetchFailure(at(plain), policy).action).toBe('retry');
  });

  it('retries a transient failure within the cycle twice, on the short backoff, then fails it to a later cycle', () => {
    // Equal jitter with random 0.5: three quarters of the exponential step.
    expect(decideFetchFailure(at(transient, { attempt: 1 }), policy)).toEqual({ action: 'retry', delayMs: 375 });
    expect(decideFetchFailure(at(transient, { attempt: 2 }), policy)).toEqual({ action: 'retry', delayMs: 750 });
    const d = decideFetchFailure(at(transient, { attempt: 3, fetchAttempts: 1 }), policy);
    expect(d).toEqual({
      action: 'fail',
      attempts: 2,
      failure: {
        errorCode: 'POLLER_FTP_CONNECTION_LOST',
        message: 'reset',
        nextRetryMs: 1_000_000 + 90_000,
        quarantine: false,
        notCounted: false,
      },
    });
  });

  it('quarantines at maxAttempts, and at once for a permanent error', () => {
    const last = decideFetchFailure(at(transient, { attempt: 3, fetchAttempts: 4 }), policy);
    expect(last.action === 'fail' && last.failure.quarantine).toBe(true);
    const gone = decideFetchFailure(at(new NotFoundError('POLLER_SFTP_NOT_FOUND', 'gone')), policy);
    const corrupt = decideFetchFailure(at(new PermanentError('POLLER_LANDING_INTEGRITY_MISMATCH', 'x')), policy);
    expect(corrupt.action === 'fail' && corrupt.failure.quarantine).toBe(true);
    expect(gone.action === 'fail' && gone.failure.quarantine).toBe(true);
    expect(gone.action === 'fail' && gone.attempts).toBe(1);
  });

  it('waits out a short Retry-After in the cycle, and leaves a long one to a later cycle, never quarantined', () => {
    const short = new ThrottledError('POLLER_HTTP_THROTTLED', '429', { retryAfterMs: 4_000 });
    expect(decideFetchFailure(at(short), policy)).toEqual({ action: 'retry', delayMs: 4_000 });
    const long = new ThrottledError('POLLER_HTTP_THROTTLED', '429', { retryAfterMs: 7_200_000 });
    const d = decideFetchFailure(at(long, { fetchAttempts: 99 }), policy);
    expect(d.action).toBe('fail');
    if (d.action !== 'fail') return;
    expect(d.failure).toMatchObject({ quarantine: false, notCounted: true, nextRetryMs: 1_000_000 + 7_200_000 });
  });

  it('retries an unclassified error, but not a programming error', () => {
    expect(decideFetchFailure(at(new Error('EIO')), policy).action).toBe('retry');
    const bug = decideFetchFailure(at(new TypeError('x is undefined')), policy);
    expect(bug.action === 'fail' && bug.failure.quarantine).toBe(true);
  });
});
