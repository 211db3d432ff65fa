/** `poller ledger prune`: apply retention now, or count what it would delete. `poller ledger migrate`: SQLite to PostgreSQL. */
import { readFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import { loadConfig } from '../config/load.js';
import { isPostgresUrl } from '../config/schema.js';
import { importSqliteLedger } from '../ledger/postgres/import-sqlite.js';
import { pruneLedger, retentionPlan } from '../ledger/retention.js';
import { redactUrl } from '../util/redact-url.js';
import { withCommandApp } from './app.js';
import { type CommonArgs, commonOptions } from './options.js';
import { printJson, printLine, UsageError } from './output.js';

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
    await withCommandApp(args, { needSecrets: false }, async (app) => {
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
    });
  },
};

export function sizeText(bytes: number | null): string {
  return bytes === null ? '' : `, ${(bytes / 1_048_576).toFixed(1)} MB on disk`;
}

interface MigrateArgs extends CommonArgs {
  to: string;
  passwordFile?: string;
}

const migrateCommand: CommandModule<object, MigrateArgs> = {
  command: 'migrate',
  describe: "Copy this config's SQLite ledger (history, plugin runs, outbox) into an empty PostgreSQL ledger",
  builder: (y) =>
    commonOptions(y)
      .option('to', { type: 'string', demandOption: true, describe: 'postgres://user@host/db (no password)' })
      .option('password-file', {
        type: 'string',
        describe: 'File holding the password; else PGPASSWORD or PGPASSFILE',
      }) as never,
  handler: async (args) => {
    const config = loadConfig(args.config, process.env, { needSecrets: false });
    if (config.postgres)
      throw new UsageError(`ledger: already PostgreSQL (${config.ledger}); migrate copies a SQLite ledger`);
    if (!isPostgresUrl(args.to)) throw new UsageError(`--to ${redactUrl(args.to)}: not a postgres:// URL`);
    if (new URL(args.to).password)
      throw new UsageError('--to: the URL contains a password; use --password-file, PGPASSWORD or PGPASSFILE');
    let password: string | undefined;
    if (args.passwordFile) {
      try {
        password = readFileSync(args.passwordFile, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        throw new UsageError(
          `--password-file: cannot read ${args.passwordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
    }
    const displayUrl = redactUrl(args.to);
    const counts = await importSqliteLedger(config.ledger, {
      url: args.to,
      displayUrl,
      ...(password !== undefined && { password }),
    });
    if (args.json) return printJson({ to: displayUrl, ...counts });
    printLine(
      `copied ${counts.files} file version(s), ${counts.pluginRuns} plugin run(s), ${counts.events} event(s)${counts.volumes ? `, ${counts.volumes} radar volume version(s)` : ''} into ${displayUrl}`,
    );
    printLine(
      `next: set ledger: ${displayUrl} in the config (password from ledger.passwordFile, PGPASSWORD or PGPASSFILE)`,
    );
  },
};

export const ledgerCommand: CommandModule = {
  command: 'ledger <command>',
  describe: 'Ledger maintenance: prune, migrate',
  builder: (y) =>
    y.command(pruneCommand).command(migrateCommand).demandCommand(1, 'give a ledger command: prune or migrate'),
  handler: () => undefined,
};
