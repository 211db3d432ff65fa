/** `poller run-once`: one cycle of each selected source, a summary, exit 1 if anything failed. */
import type { CommandModule } from 'yargs';
import type { SourceConfig } from '../config/load.js';
import { type CycleSummary, runCycle } from '../engine/cycle.js';
import { runVolumeStage } from '../engine/volume-stage.js';
import { openEventsHub } from '../events/outbox.js';
import { toleratingMissingDirs } from '../sources/date-template.js';
import { sleep } from '../transfer/retry.js';
import { parseDurationMs } from '../util/duration.js';
import { type App, cycleStartDirs, openApp, prepareSource } from './app.js';
import { type CommonArgs, commonOptions, parseTime } from './options.js';
import { humanBytes, printJson, printTable, UsageError } from './output.js';
import { createProgress } from './progress.js';

interface RunOnceArgs extends CommonArgs {
  source?: string[];
  dryRun: boolean;
  since?: string;
  until?: string;
  eventsWait?: string;
  volumesWait?: string;
}

export interface RunOnceResult {
  sources: CycleSummary[];
  /** Batches of at most `maxFilesPerPoll` files, over every source. */
  batches: number;
  durationMs: number;
  /** Per sink: events sent at exit, and those left in the outbox for the next run. */
  events?: Array<{ sink: string; sent: number; duplicates: number; pending: number; lastError: string | null }>;
}

export async function runOnce(args: RunOnceArgs): Promise<number> {
  const showProgress = !args.json && process.stdout.isTTY === true;
  // Per-file info lines would scroll the progress display away: a terminal gets warnings and
  // errors unless --log-level says otherwise.
  const logLevel = args.logLevel ?? (showProgress ? 'warn' : undefined);
  const eventsWaitMs = parseDurationMs(args.eventsWait ?? '10s');
  if (eventsWaitMs === undefined)
    throw new UsageError(`--events-wait ${args.eventsWait}: not a duration; write e.g. 10s`);
  const volumesWaitMs = parseDurationMs(args.volumesWait ?? '0s');
  if (volumesWaitMs === undefined)
    throw new UsageError(`--volumes-wait ${args.volumesWait}: not a duration; write e.g. 3m`);
  const app = await openApp({
    configPath: args.config,
    logTo: 'stderr',
    ...(logLevel && { logLevel }),
  });
  try {
    const selected = app.config.sources.filter((s) => (args.source?.length ? args.source.includes(s.name) : s.enabled));
    const unknown = (args.source ?? []).filter((n) => !app.config.sources.some((s) => s.name === n));
    if (unknown.length)
      throw new UsageError(`--source ${unknown.join(', ')}: no such source in ${args.config}; see \`poller status\``);
    const sinceMs = parseTime(args.since, '--since');
    const untilMs = parseTime(args.until, '--until');
    const started = Date.now();
    // A terminal gets a live display; --json, pipes and files get only the summary.
    const progress = createProgress(
      showProgress ? process.stdout : { isTTY: false, write: () => undefined },
      selected.map((s) => s.name),
    );
    const deps = await app.cycleDeps(progress.events);
    const onSignal = () => app.shutdown.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let summaries: CycleSummary[];
    try {
      summaries = await Promise.all(
        selected.map((src) => {
          const prepared = prepareSource(src);
          const startDirs = cycleStartDirs(prepared, { sinceMs, untilMs });
          const source = app.source(src);
          return runCycle(prepared, startDirs ? toleratingMissingDirs(source, startDirs) : source, deps, {
            signal: app.shutdown.signal,
            settleWithinCycle: true,
            // A backfill drains: batch after batch until nothing ready is left.
            drain: true,
            // Another instance's lister lease does not stop this run (its --since) from listing.
            listOnce: true,
            dryRun: args.dryRun,
            ...(sinceMs !== undefined && { sinceMs }),
            ...(untilMs !== undefined && { untilMs }),
            ...(startDirs && { startDirs }),
          });
        }),
      );
    } finally {
      progress.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (!args.dryRun && !app.shutdown.signal.aborted)
      await waitForVolumes(app, deps, selected, summaries, Date.now() + volumesWaitMs);
    const result: RunOnceResult = {
      sources: summaries,
      batches: summaries.reduce((n, s) => n + s.batches, 0),
      durationMs: Date.now() - started,
    };
    if (app.config.events && !args.dryRun) result.events = await flushEvents(app, eventsWaitMs);
    if (args.json) printJson(result);
    else printSummary(result, args.dryRun);
    reportCollecting(summaries);
    return summaries.some((s) => s.failed > 0 || s.error || (s.volumes?.failed ?? 0) > 0) ? 1 : 0;
  } finally {
    await app.close();
  }
}

/**
 * Volumes still collecting whose quiet time ends within `untilMs`: wait for it and run the volume
 * stage again (they are declared partial and run now rather than by the next run). Bounded by the
 * deadline and by the number of rounds.
 */
async function waitForVolumes(
  app: App,
  deps: Awaited<ReturnType<App['cycleDeps']>>,
  selected: readonly SourceConfig[],
  summaries: CycleSummary[],
  untilMs: number,
): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const due = summaries
      .flatMap((s) => s.volumes?.collecting ?? [])
      .map((v) => v.partialAtMs)
      .filter((t): t is number => t !== undefined && t <= untilMs);
    if (due.length === 0) return;
    try {
      await sleep(Math.max(0, Math.min(...due) - Date.now()), app.shutdown.signal);
    } catch {
      return;
    }
    for (const [i, src] of selected.entries()) {
      const s = summaries[i] as CycleSummary;
      if (!src.volumes || !s.volumes) continue;
      const next = await runVolumeStage(src, deps, app.shutdown.signal);
      s.volumes = {
        ...next,
        members: s.volumes.members + next.members,
        complete: s.volumes.complete + next.complete,
        partial: s.volumes.partial + next.partial,
        processed: s.volumes.processed + next.processed,
        failed: s.volumes.failed + next.failed,
      };
    }
  }
}

/** Say on stderr what is left collecting, and when the next run declares it. */
function reportCollecting(summaries: readonly CycleSummary[]): void {
  for (const s of summaries) {
    const collecting = s.volumes?.collecting ?? [];
    if (collecting.length === 0) continue;
    const next = collecting.map((v) => v.partialAtMs).filter((t): t is number => t !== undefined);
    const stale = collecting.filter((v) => v.stale).length;
    process.stderr.write(
      `volumes: ${collecting.length} volume(s) of ${s.name} still collecting${
        next.length ? `; a run after ${new Date(Math.min(...next)).toISOString()} declares the first partial` : ''
      }${stale ? `; ${stale} below the minimum (stale)` : ''}; see \`poller volumes --state collecting\`\n`,
    );
  }
}

/**
 * Send what the outbox holds within the bound; the rest stays for the next run (or the daemon),
 * and the command says so. Ingest is done by now: a dead broker delays nothing but the exit.
 */
async function flushEvents(app: App, waitMs: number): Promise<NonNullable<RunOnceResult['events']>> {
  const hub = await openEventsHub(app.config, app.ledger, app.log);
  if (!hub) return [];
  try {
    const left = await hub.drain(Date.now() + waitMs);
    await hub.prune(Date.now());
    const out = hub.stats().map((s) => ({
      sink: s.sink,
      sent: s.published,
      duplicates: s.duplicates,
      pending: left.get(s.sink) ?? 0,
      lastError: s.lastError,
    }));
    for (const e of out)
      if (e.pending > 0)
        process.stderr.write(
          `events: ${e.pending} event(s) for sink ${e.sink} stay in the outbox and are sent by the next run${e.lastError ? ` (${e.lastError})` : ''}\n`,
        );
    return out;
  } finally {
    await hub.stop();
  }
}

function printSummary(r: RunOnceResult, dryRun: boolean): void {
  printTable(
    [
      'source',
      'listed',
      'new',
      dryRun ? 'would fetch' : 'fetched',
      'bytes',
      'processed',
      'failed',
      'skipped',
      'batches',
      'note',
    ],
    r.sources.map((s) => [
      s.name,
      s.listed,
      s.new,
      dryRun ? s.listed - s.skipped : s.fetched,
      humanBytes(s.bytes),
      s.processed,
      s.failed,
      s.skipped,
      s.batches,
      [
        s.error ? `ERROR ${s.error.message}` : s.settling ? `${s.settling} still settling` : '',
        s.volumes && (s.volumes.processed || s.volumes.failed || s.volumes.collecting.length)
          ? `volumes: ${s.volumes.processed} run, ${s.volumes.failed} failed, ${s.volumes.collecting.length} collecting`
          : '',
      ]
        .filter(Boolean)
        .join('; '),
    ]),
  );
}

export const runOnceCommand: CommandModule<object, RunOnceArgs> = {
  command: 'run-once',
  describe: 'Run one poll cycle of each source, wait for plugins, print a summary',
  builder: (y) =>
    commonOptions(y)
      .option('source', { type: 'string', array: true, describe: 'Only these sources (repeatable)' })
      .option('dry-run', {
        type: 'boolean',
        default: false,
        describe: 'List and diff only: fetch nothing, record nothing',
      })
      .option('since', { type: 'string', describe: 'Only files modified at or after this time (ISO 8601)' })
      .option('until', { type: 'string', describe: 'Only files modified before this time (ISO 8601)' })
      .option('volumes-wait', {
        type: 'string',
        default: '0s',
        describe: 'Wait up to this long for collecting volumes whose quiet time ends, and run them before exit',
      })
      .option('events-wait', {
        type: 'string',
        default: '10s',
        describe: 'At exit, send pending events for at most this long; the rest waits for the next run',
      }) as never,
  handler: async (args) => {
    process.exitCode = await runOnce(args);
  },
};
