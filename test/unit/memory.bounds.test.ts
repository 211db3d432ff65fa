import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { runSignal } from '../../src/plugins/run-signal.js';
import { BUFFER_BYTES, releaseBuffer, takeBuffer } from '../../src/transfer/landing-writer.js';

describe('a plugin run signal', () => {
  it('aborts at its timeout, with a TimeoutError', async () => {
    const shutdown = new AbortController();
    const run = runSignal(shutdown.signal, 20);
    await new Promise((r) => run.signal.addEventListener('abort', r, { once: true }));
    expect((run.signal.reason as Error).name).toBe('TimeoutError');
    run.release();
  });

  it('aborts on shutdown, also when shutdown came first', () => {
    const shutdown = new AbortController();
    const run = runSignal(shutdown.signal, 60_000);
    shutdown.abort(new Error('stop'));
    expect(run.signal.aborted).toBe(true);
    expect(runSignal(shutdown.signal, 60_000).signal.aborted).toBe(true);
    run.release();
  });

  it('leaves nothing on the shutdown signal once released, however many runs', () => {
    const shutdown = new AbortController();
    for (let i = 0; i < 1000; i++) runSignal(shutdown.signal, 60_000).release();
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    const run = runSignal(shutdown.signal, 60_000);
    run.release();
    shutdown.abort();
    expect(run.signal.aborted).toBe(false);
  });
});

describe('landing buffers', () => {
  it('are sized to the file, in powers of two from 16 KiB to the in-memory maximum', () => {
    expect(takeBuffer(4096).byteLength).toBe(16 * 1024);
    expect(takeBuffer(16 * 1024 + 1).byteLength).toBe(32 * 1024);
    expect(takeBuffer(BUFFER_BYTES).byteLength).toBe(BUFFER_BYTES);
    expect(takeBuffer().byteLength).toBe(BUFFER_BYTES);
  });

  it('are reused by size, and at most 8 MiB of them are kept', () => {
    const small = takeBuffer(4096);
    releaseBuffer(small);
    expect(takeBuffer(5000)).toBe(small);
    const big = Array.from({ length: 10 }, () => takeBuffer(BUFFER_BYTES));
    for (const b of big) releaseBuffer(b);
    const again = Array.from({ length: 10 }, () => takeBuffer(BUFFER_BYTES));
    expect(again.filter((b) => big.includes(b))).toHaveLength(8);
  });
});
