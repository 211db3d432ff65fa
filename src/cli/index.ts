#!/usr/bin/env node
/** The `poller` command: entry point; each command lives in its own module. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { bufrCommand } from './bufr.js';
import { demoCommand } from './demo.js';
import { filesCommand, statusCommand, whyCommand } from './inspect.js';
import { ledgerCommand } from './ledger.js';
import { forgetCommand, retryCommand } from './manage.js';
import { reportFatal } from './output.js';
import { checkCommand, pluginsCommand } from './plugins.js';
import { runCommand } from './run.js';
import { runOnceCommand } from './run-once.js';

export async function main(argv: string[]): Promise<void> {
  // A promise a library drops (basic-ftp can leave one behind when the landing disk fails under a
  // transfer) must not end a poller: every failure that matters is already recorded through its
  // own path. Log it as one JSON line on stderr and go on.
  process.on('unhandledRejection', (reason) => {
    const err = reason instanceof Error ? reason : new Error(String(reason));
    const code = (err as NodeJS.ErrnoException).code;
    process.stderr.write(
      `${JSON.stringify({ level: 40, time: new Date().toISOString(), event: 'process.unhandled_rejection', err: { message: err.message, ...(code && { code }) }, msg: 'unhandled promise rejection (ignored)' })}\n`,
    );
  });
  try {
    await yargs(argv)
      .scriptName('poller')
      .usage('$0 <command> [options]')
      .command(runCommand)
      .command(runOnceCommand)
      .command(statusCommand)
      .command(filesCommand)
      .command(whyCommand)
      .command(retryCommand)
      .command(forgetCommand)
      .command(pluginsCommand)
      .command(checkCommand)
      .command(demoCommand)
      .command(bufrCommand)
      .command(ledgerCommand)
      .demandCommand(1, 'give a command; see poller --help')
      .strict()
      .help()
      .version()
      .wrap(null)
      .fail((msg, err) => {
        if (err) throw err;
        process.stderr.write(`poller: ${msg}\n`);
        process.exit(2);
      })
      .parseAsync();
  } catch (err) {
    process.exitCode = reportFatal(err);
  }
}

await main(hideBin(process.argv));
