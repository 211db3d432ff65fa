/** `poller retry` and `poller forget`: change what the ledger will do next. */
import type { CommandModule } from 'yargs';
import { LEASE_MS, processClaimed } from '../engine/cycle.js';
import { runVolumeStage } from '../engine/volume-stage.js';
import { FILE_STATES, type FileState } from '../ledger/ledger.js';
import { openApp, withCommandApp } from './app.js';
import { type CommonArgs, commonOptions } from './options.js';
import { printJson, printLine, UsageError } from './output.js';

interface RetryArgs extends CommonArgs {
  source?: string;
  plugin?: string;
  path?: string;
  volume?: string;
  quarantined: boolean;
}

export const retryCommand: CommandModule<object, RetryArgs> = {
  command: 'retry',
  describe: 'Re-run failed plugins now (without downloading again); failed fetches are retried on the next cycle',
  builder: (y) =>
    commonOptions(y)
      .option('source', { type: 'string' })
      .option('plugin', { type: 'string', describe: 'Only runs of this plugin' })
      .option('path', { type: 'string', describe: 'Only this remote path' })
      .option('volume', { type: 'string', describe: 'Only this radar volume key (its volume plugins)' })
      .option('quarantined', {
        type: 'boolean',
        default: false,
        describe: 'Also quarantined files (attempts start again)',
      }) as never,
  handler: async (args) => {
    const app = await openApp({
      configPath: args.config,
      logTo: 'stderr',
      ...(args.logLevel && { logLevel: args.logLevel }),
    });
    try {
      const runner = await app.runner();
      if (args.plugin && !runner.plugins.some((p) => p.name === args.plugin)) {
        throw new UsageError(`--plugin ${args.plugin}: no such plugin in the config; see \`poller plugins\``);
      }
      const now = Date.now();
      // `--volume` retries only that volume; `--path` only that file.
      const ids = args.volume
        ? []
        : await app.ledger.scheduleRetry(
            {
              ...(args.source && { source: args.source }),
              ...(args.plugin && { plugin: args.plugin }),
              ...(args.path && { path: args.path.replace(/^\/+/, '') }),
              includeQuarantined: args.quarantined,
            },
            now,
          );
      const scheduled = ids.length;
      const summary = { processed: 0, failed: 0 };
      const deps = await app.cycleDeps();
      // Files failed in a plugin run now; failed fetches wait for the next cycle of their source.
      const recs = await app.ledger.claimIdsForProcessing(ids, app.owner, Date.now() + LEASE_MS, now);
      const byName = new Map(app.config.sources.map((s) => [s.name, s]));
      await Promise.all(
        recs.map((r) =>
          processClaimed(
            r,
            { src: byName.get(r.source) ?? { name: r.source }, deps, summary, emit: {}, log: app.log },
            args.plugin,
          ),
        ),
      );
      const volumes = { scheduled: 0, processed: 0, failed: 0 };
      if (!args.path && app.ledger.volumes) {
        const vids = await app.ledger.volumes.retryVolumes(
          {
            ...(args.source && { source: args.source }),
            ...(args.plugin && { plugin: args.plugin }),
            ...(args.volume && { key: args.volume }),
            includeQuarantined: args.quarantined,
          },
          now,
        );
        volumes.scheduled = vids.length;
        // The volume stage claims what is due and runs it, as a cycle would.
        for (const src of app.config.sources) {
          if (!src.volumes || vids.length === 0) continue;
          const s = await runVolumeStage(src, deps, app.shutdown.signal);
          volumes.processed += s.processed;
          volumes.failed += s.failed;
        }
      }
      const hasVolumes = app.config.sources.some((src) => src.volumes);
      if (args.json) printJson({ scheduled, ...summary, ...(hasVolumes && { volumes }) });
      else
        printLine(
          `scheduled ${scheduled} file(s); plugins re-ran: ${summary.processed} processed, ${summary.failed} still failing${
            volumes.scheduled
              ? `; ${volumes.scheduled} volume(s): ${volumes.processed} processed, ${volumes.failed} still failing`
              : ''
          }`,
        );
      process.exitCode = summary.failed > 0 || volumes.failed > 0 ? 1 : 0;
    } finally {
      await app.close();
    }
  },
};

interface ForgetArgs extends CommonArgs {
  source: string;
  path?: string;
  state?: FileState;
  all: boolean;
}

export const forgetCommand: CommandModule<object, ForgetArgs> = {
  command: 'forget',
  describe: 'Remove versions from the ledger so they are fetched again when next listed',
  builder: (y) =>
    commonOptions(y)
      .option('source', { type: 'string', demandOption: true })
      .option('path', { type: 'string' })
      .option('state', { type: 'string', choices: FILE_STATES as string[] })
      .option('all', { type: 'boolean', default: false, describe: 'Forget every file of the source' }) as never,
  handler: async (args) => {
    if (!args.path && !args.state && !args.all) throw new UsageError('forget: give --path, --state or --all');
    await withCommandApp(args, { needSecrets: false }, async (app) => {
      const n = await app.ledger.forget({
        source: args.source,
        ...(args.path && { path: args.path.replace(/^\/+/, '') }),
        ...(args.state && { state: args.state }),
      });
      if (args.json) printJson({ forgotten: n });
      else printLine(`forgot ${n} file version(s) of ${args.source}`);
    });
  },
};
