/**
 * The signal a plugin run sees: aborted when the daemon shuts down or the run's timeout passes.
 * Released when the run ends, so its timer and its listener on the shutdown signal go with it.
 * (`AbortSignal.any([shutdown, AbortSignal.timeout(ms)])` per run kept each run's timer, signal
 * and a reference in the long-lived shutdown signal until the timeout fired: at 60 runs a second
 * and a 5-minute timeout, some 18,000 of them; docs/memory.md.)
 */
export interface RunSignal {
  readonly signal: AbortSignal;
  release(): void;
}

export function runSignal(shutdown: AbortSignal, timeoutMs: number): RunSignal {
  const controller = new AbortController();
  const onShutdown = (): void => controller.abort(shutdown.reason);
  const timer = setTimeout(
    () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    timeoutMs,
  );
  timer.unref();
  if (shutdown.aborted) onShutdown();
  else shutdown.addEventListener('abort', onShutdown, { once: true });
  return {
    signal: controller.signal,
    release() {
      clearTimeout(timer);
      shutdown.removeEventListener('abort', onShutdown);
    },
  };
}
