/**
 * The progress display of `poller run-once` on a terminal: one line per source (files and bytes
 * done of those claimed, rate, ETA), redrawn in place a few times a second. Off when stdout is
 * not a terminal, so pipes, files and journald see only the summary.
 */
import type { CycleEvents } from '../engine/cycle.js';
import { humanBytes } from './output.js';

/** The display as the command sees it: hooks to feed, and a final draw. */
export interface ProgressView {
  readonly events: CycleEvents;
  /** Draw the final state and stop redrawing. Idempotent. */
  stop(): void;
}

/** What the display writes to: a terminal stream (process.stdout). */
export interface ProgressOutput {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

interface SourceProgress {
  listed: number;
  claimedFiles: number;
  claimedBytes: number;
  doneFiles: number;
  failedFiles: number;
  bytes: number;
  firstByteMs: number | undefined;
  claimed: boolean;
  finished: boolean;
}

// Fast enough to look live, slow enough not to cost a backfill anything.
const REDRAW_MS = 200;

/**
 * A display for `sources` on `out`, or a silent one when `out` is not a terminal.
 *
 * @example
 * const progress = createProgress(process.stdout, ['radar-north']);
 * await runCycle(src, source, await app.cycleDeps(progress.events), opts);
 * progress.stop();
 */
export function createProgress(
  out: ProgressOutput,
  sources: readonly string[],
  now: () => number = Date.now,
): ProgressView {
  if (!out.isTTY) return { events: {}, stop() {} };
  const state = new Map<string, SourceProgress>(
    sources.map((s) => [
      s,
      {
        listed: 0,
        claimedFiles: 0,
        claimedBytes: 0,
        doneFiles: 0,
        failedFiles: 0,
        bytes: 0,
        firstByteMs: undefined,
        claimed: false,
        finished: false,
      },
    ]),
  );
  let drawnLines = 0;
  const draw = () => {
    // A pseudo-terminal without a size reports 0 columns.
    const width = Math.max(40, (out.columns || 100) - 1);
    let text = drawnLines > 0 ? `\x1b[${drawnLines}A` : '';
    for (const [name, p] of state) text += `\r\x1b[2K${formatLine(name, p, now()).slice(0, width)}\n`;
    drawnLines = state.size;
    out.write(text);
  };
  const timer = setInterval(draw, REDRAW_MS);
  timer.unref();
  const of = (source: string) => state.get(source);
  let stopped = false;
  return {
    events: {
      listed(source, files) {
        const p = of(source);
        if (p) p.listed = Math.max(p.listed, files);
      },
      claimed(source, files, sizeBytes) {
        const p = of(source);
        if (!p) return;
        p.claimed = true;
        p.claimedFiles = files;
        p.claimedBytes = sizeBytes;
      },
      bytes(source, n) {
        const p = of(source);
        if (!p) return;
        p.firstByteMs ??= now();
        p.bytes += n;
      },
      fetched(source) {
        const p = of(source);
        if (p) p.doneFiles++;
      },
      fetchFailed(source) {
        const p = of(source);
        if (p) p.failedFiles++;
      },
      polled(source, ok) {
        const p = of(source);
        if (p && !ok) p.finished = true;
      },
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      for (const p of state.values()) p.finished = true;
      draw();
    },
  };
}

function formatLine(name: string, p: SourceProgress, nowMs: number): string {
  if (!p.claimed) return `${name}  listing… ${p.listed} files seen`;
  const elapsedS = p.firstByteMs === undefined ? 0 : (nowMs - p.firstByteMs) / 1000;
  const rate = elapsedS > 0.5 ? p.bytes / elapsedS : 0;
  const left = Math.max(0, p.claimedBytes - p.bytes);
  const eta = p.finished || left === 0 ? 'done' : rate > 0 ? `ETA ${formatSeconds(left / rate)}` : 'ETA -';
  const failed = p.failedFiles > 0 ? `  ${p.failedFiles} failed` : '';
  return `${name}  ${p.doneFiles}/${p.claimedFiles} files  ${humanBytes(p.bytes)}/${humanBytes(p.claimedBytes)}  ${humanBytes(Math.round(rate))}/s  ${eta}${failed}`;
}

function formatSeconds(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
