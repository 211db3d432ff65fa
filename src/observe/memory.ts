/**
 * Accounting of what could grow with the tree or with uptime, for /metrics: the directories each
 * local source watches (one inotify watch each) and whether it fell back to its schedule. The
 * watchers report here; the metrics registry reads it at scrape time. Process-wide, like the
 * inotify table it mirrors.
 */
import { Gauge, type Registry } from 'prom-client';

interface WatchState {
  dirs: number;
  fallback: boolean;
}

const watches = new Map<string, WatchState>();

/** A local source's watch set changed; `dirs` 0 and no fallback once it stops watching. */
export function reportWatchState(source: string, state: WatchState): void {
  if (state.dirs === 0 && !state.fallback) watches.delete(source);
  else watches.set(source, { ...state });
}

export function watchStates(): ReadonlyMap<string, Readonly<WatchState>> {
  return watches;
}

/** The gauges, on the given registries (metrics.ts calls this once per registry). */
export function registerMemoryGauges(registers: Registry[]): void {
  new Gauge({
    name: 'poller_watched_directories',
    help: 'Directories a local source watches (one inotify watch each): the directories of its window, never its files.',
    labelNames: ['source'] as const,
    registers,
    collect() {
      this.reset();
      for (const [source, s] of watches) this.set({ source }, s.dirs);
    },
  });
  new Gauge({
    name: 'poller_watch_fallback',
    help: 'A local source polled by its schedule only because the kernel refused watches (ENOSPC, EMFILE): 1, else 0.',
    labelNames: ['source'] as const,
    registers,
    collect() {
      this.reset();
      for (const [source, s] of watches) this.set({ source }, s.fallback ? 1 : 0);
    },
  });
}
