/** `poller run-once`: one cycle of each selected source, a summary, exit 1 if anything failed. */
import type { CommandModule } from 'yargs';
import { type CycleSummary, runCycle } from '../engine/cycle.js';
import { toleratingMissingDirs } from '../sources/date-template.js';
import { cycleStartDirs, openApp, prepareSource } from './app.js';
import { type CommonArgs, commonOptions, parseTime } from './options.js';
import { humanBytes, printJson, printTable, UsageError } from './output.js';
import { createProgress } from './progress.js';

interface RunOnceArgs extends CommonArgs {
  source?: string[];
  dryRun: boolean;
  since?: string;
  until?: string;
}

export interface RunOnceResult {
  sources: CycleSummary[];
  /** Batches of at most `maxFilesPerPoll` files, over every source. */
  batches: number;
  durationMs: number;
}

export async function runOnce(args: RunOnceArgs): Promise<number> {
  const showProgress = !args.json && process.stdout.isTTY === true;
  // Per-file info lines would scroll the progress display away: a terminal gets warnings and
  // errors unless --log-level says otherwise.
  const logLevel = args.logLevel ?? (showProgress ? 'warn' : undefined);
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
    const result: RunOnceResult = {
      sources: summaries,
      batches: summaries.reduce((n, s) => n + s.batches, 0),
      durationMs: Date.now() - started,
    };
    if (args.json) printJson(result);
    else printSummary(result, args.dryRun);
    return summaries.some((s) => s.failed > 0 || s.error) ? 1 : 0;
  } finally {
    await app.close();
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
      s.error ? `ERROR ${s.error.message}` : s.settling ? `${s.settling} still settling` : '',
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
      .option('until', { type: 'string', describe: 'Only files modified before this time (ISO 8601)' }) as never,
  handler: async (args) => {
    process.exitCode = await runOnce(args);
  },
};
