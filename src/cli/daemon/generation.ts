/**
 * Generations of the daemon: the sources and plugins built from one config. A reload builds the
 * next generation; the old one is closed once the cycles that started with it have ended, so a
 * cycle never sees a mix.
 */

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Config, SourceConfig } from '../../config/load.js';
import type { CycleDeps, CycleEvents } from '../../engine/cycle.js';
import { volumeGatherer } from '../../engine/volume-gather.js';
import { wantsIntegrity } from '../../events/outbox.js';
import type { PluginRunner, RunnerObserver } from '../../plugins/runner.js';
import { loadSourceKinds } from '../../sources/index.js';
import type { Source } from '../../sources/source.js';
import type { App } from '../app.js';
import { gathersVolumes } from '../app.js';

/** Sources and plugins built from one config. */
export interface Generation {
  readonly config: Config;
  readonly runner: PluginRunner;
  source(src: SourceConfig): Source;
  deps: CycleDeps;
  users: number;
  retired: boolean;
  /** Sources by name, with the settings they were opened with (to reuse them across a reload). */
  readonly sources: Map<string, { src: SourceConfig; source: Source }>;
  close(): Promise<void>;
}

export async function openGeneration(
  app: App,
  config: Config,
  events: CycleEvents,
  previous: Generation | undefined,
  observer: RunnerObserver,
): Promise<Generation> {
  // A reload may bring a source kind the process has not imported yet.
  await loadSourceKinds(config.sources);
  const runner = await app.openRunner(config, observer);
  const sources = new Map<string, { src: SourceConfig; source: Source }>();
  for (const src of config.sources) {
    const prev = previous?.sources.get(src.name);
    // Unchanged connection settings: keep the pool (and its open connections).
    if (prev && isDeepStrictEqual(prev.src, src)) {
      sources.set(src.name, prev);
      previous?.sources.delete(src.name);
    }
  }
  let closing: Promise<void> | undefined;
  const gen: Generation = {
    config,
    runner,
    users: 0,
    retired: false,
    sources,
    source(src) {
      let entry = sources.get(src.name);
      if (!entry) {
        entry = { src, source: app.openSource(src) };
        sources.set(src.name, entry);
      }
      return entry.source;
    },
    deps: {
      ledger: app.ledger,
      runner,
      log: app.log,
      owner: app.owner,
      landingRoot: config.landing,
      transferLimit: app.transferLimit,
      retryBaseMs: config.retryBaseMs,
      retryMaxMs: config.retryMaxMs,
      listerLeaseMs: config.leaseTimeMs,
      events,
      // A sink that announces landed files wants their SHA-512 (WNM `integrity`).
      ...(wantsIntegrity(config) && { hashLanded: true }),
      ...(gathersVolumes(config) && {
        gatherVolume: volumeGatherer(config.landing, (name) => {
          const src = config.sources.find((s) => s.name === name);
          return src && gen.source(src);
        }),
      }),
    },
    close() {
      closing ??= (async () => {
        await runner.teardown();
        for (const { source } of sources.values()) await source.close().catch(() => undefined);
      })();
      return closing;
    },
  };
  return gen;
}

/** The generation new cycles start with, and those a reload retired, until their last cycle ends. */
export interface Generations {
  readonly current: Generation;
  /** Run `work` on the current generation; one retired meanwhile closes once its last user is done. */
  use<T>(work: (g: Generation) => Promise<T>): Promise<T>;
  /** Make `next` current; the previous one closes once unused. */
  replace(next: Generation): void;
  /** Close every generation: after the last cycle, before the ledger. */
  close(): Promise<void>;
}

export function trackGenerations(first: Generation, log: Logger): Generations {
  let current = first;
  /** Retired generations being closed; close() waits for them. */
  const closings: Promise<void>[] = [];
  const closeWhenUnused = (g: Generation) => {
    if (g.retired && g.users === 0)
      closings.push(g.close().catch((err: unknown) => log.warn({ err }, 'closing the previous config failed')));
  };
  return {
    get current() {
      return current;
    },
    async use(work) {
      const g = current;
      g.users++;
      try {
        return await work(g);
      } finally {
        g.users--;
        closeWhenUnused(g);
      }
    },
    replace(next) {
      const old = current;
      current = next;
      old.retired = true;
      closeWhenUnused(old);
    },
    async close() {
      await Promise.all(closings);
      await current.close();
    },
  };
}
