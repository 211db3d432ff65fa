/**
 * The demo feed, live: a new volume from each radar every cadence (and SYNOP every third), as a
 * real feed keeps arriving, so a daemon has something to poll, to chart and to be late on. A radar
 * goes offline while `radar/<NAME>/OFFLINE` exists under the feed root (`touch` it to watch its
 * lateness alert fire; remove it and the radar is back), or by {@link LiveFeed.setOffline}.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEMO_RADARS, type FeedFile, feedWriter, STEP_MS, writeDemoStep } from './feed.js';

export interface LiveFeedOptions {
  /** Time between two steps (wall clock). Each step advances the data time by 5 minutes. */
  cadenceMs: number;
  radars?: readonly string[];
  /** Nominal time of the first live step; @default now, floored to 5 minutes, plus 5 minutes */
  startMs?: number;
  /** Sweep size; small by default, the demo is about flow, not pictures. */
  rays?: number;
  bins?: number;
  onError?: (err: unknown) => void;
}

export interface LiveFeed {
  readonly radars: readonly string[];
  /** Write the next step now (the clock does it every cadence); resolves with the files written. */
  step(): Promise<FeedFile[]>;
  /** Take a radar off the air, or back. */
  setOffline(radar: string, offline: boolean): void;
  stop(): Promise<void>;
}

/** The control file that takes a radar off the air. */
export function offlineMarker(root: string, radar: string): string {
  return path.join(root, 'radar', radar, 'OFFLINE');
}

export function startLiveFeed(root: string, o: LiveFeedOptions): LiveFeed {
  const radars = o.radars ?? DEMO_RADARS;
  const offline = new Set<string>();
  let nextMs = o.startMs ?? Math.floor(Date.now() / STEP_MS) * STEP_MS + STEP_MS;
  let index = 0;
  let running: Promise<FeedFile[]> = Promise.resolve([]);
  const writeStep = async (): Promise<FeedFile[]> => {
    const files: FeedFile[] = [];
    const on = radars.filter((r) => !offline.has(r) && !existsSync(offlineMarker(root, r)));
    const time = new Date(nextMs);
    nextMs += STEP_MS;
    index++;
    // Data time runs ahead of the clock in a fast demo; the upload time (mtime) is the real one.
    await writeDemoStep(feedWriter(root, files), {
      time,
      index,
      steps: 1_000_000,
      radars: on,
      quantities: ['DBZH', 'VRAD'],
      rays: o.rays ?? 36,
      bins: o.bins ?? 30,
      uploadedMs: Date.now(),
    });
    return files;
  };
  const step = () => {
    running = running.then(writeStep, writeStep);
    return running;
  };
  const timer = setInterval(() => {
    step().catch((err: unknown) => o.onError?.(err));
  }, o.cadenceMs);
  return {
    radars,
    step,
    setOffline(radar, off) {
      if (off) offline.add(radar);
      else offline.delete(radar);
    },
    async stop() {
      clearInterval(timer);
      await running.catch(() => undefined);
    },
  };
}
