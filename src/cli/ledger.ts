/** `poller ledger prune`: apply retention now, or count what it would delete. */
import type { CommandModule } from 'yargs';
import { pruneLedger, retentionPlan } from '../ledger/retention.js';
import { openApp } from './app.js';
import { type CommonArgs, commonOptions } from './options.js';
import { printJson, printLine } from './output.js';

interface PruneArgs extends CommonArgs {
  dryRun: boolean;
}

const pruneCommand: CommandModule<object, PruneArgs> = {
  command: 'prune',
  describe: 'Delete done file versions older than their source window (maxAge, or retention.keep) plus 1 h',
  builder: (y) =>
    commonOptions(y).option('dry-run', {
      type: 'boolean',
      default: false,
      describe: 'Count what would be deleted; change nothing',
    }) as never,
  handler: async (args) => {
    const app = await openApp({
      configPath: args.config,
      logTo: 'stderr',
      logLevel: args.logLevel ?? 'warn',
      needSecrets: false,
    });
    try {
      const nowMs = Date.now();
      const plan = retentionPlan(app.config, nowMs);
      const before = await app.ledger.stats();
      const totals = await pruneLedger(app.ledger, plan.rules, { nowMs, dryRun: args.dryRun });
      const after = await app.ledger.stats();
      if (args.json) {
        printJson({ dryRun: args.dryRun, ...totals, unbounded: plan.unbounded, before, after });
        return;
      }
      const verb = args.dryRun ? 'would prune' : 'pruned';
      printLine(
        `${verb} ${totals.files} file version(s) and ${totals.pluginRuns} plugin run(s)${totals.volumes ? `, ${totals.volumes} radar volume version(s)` : ''}`,
      );
      printLine(
        `ledger: ${after.fileRows} file version(s), ${after.pluginRunRows} plugin run(s)${sizeText(after.bytes)}`,
      );
      if (plan.unbounded.length > 0)
        printLine(`kept forever (no maxAge, no retention.keep): ${plan.unbounded.join(', ')}`);
    } finally {
      await app.close();
    }
  },
};

export function sizeText(bytes: number | null): string {
  return bytes === null ? '' : `, ${(bytes / 1_048_576).toFixed(1)} MB on disk`;
}

export const ledgerCommand: CommandModule = {
  command: 'ledger <command>',
  describe: 'Ledger maintenance: prune',
  builder: (y) => y.command(pruneCommand).demandCommand(1, 'give a ledger command: prune'),
  handler: () => undefined,
};
