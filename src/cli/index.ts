#!/usr/bin/env node
/** The `poller` command: entry point; each command lives in its own module. */
import type { CommandModule } from 'yargs';
import { reportFatal } from './output.js';

type Loader = () => Promise<CommandModule<object, never>[]>;

/**
 * Commands by name, each loaded only when it runs: start-up pays for the one command asked for
 * (the engine, SQLite, the BUFR decoder or the demo's FTP server), not for all of them. Help,
 * and anything that names no known command, loads them all.
 */
const COMMANDS: ReadonlyArray<readonly [readonly string[], Loader]> = [
  [['run'], async () => [(await import('./run.js')).runCommand as never]],
  [['run-once'], async () => [(await import('./run-once.js')).runOnceCommand as never]],
  [
    ['status', 'files', 'why'],
    async () => {
      const m = await import('./inspect.js');
      return [m.statusCommand, m.filesCommand, m.whyCommand] as never;
    },
  ],
  [
    ['retry', 'forget'],
    async () => {
      const m = await import('./manage.js');
      return [m.retryCommand, m.forgetCommand] as never;
    },
  ],
  [
    ['plugins', 'check'],
    async () => {
      const m = await import('./plugins.js');
      return [m.pluginsCommand, m.checkCommand] as never;
    },
  ],
  [['ledger'], async () => [(await import('./ledger.js')).ledgerCommand as never]],
  [['volumes'], async () => [(await import('./volumes.js')).volumesCommand as never]],
  [['demo'], async () => [(await import('./demo.js')).demoCommand as never]],
  [['bufr'], async () => [(await import('./bufr.js')).bufrCommand as never]],
];

/** The command modules this argv needs: its command's, none for a bare --version, else all. */
async function commandsFor(argv: readonly string[]): Promise<CommandModule<object, never>[]> {
  const first = argv.find((a) => !a.startsWith('-'));
  const named = first === undefined ? undefined : COMMANDS.find(([names]) => names.includes(first));
  if (named && !argv.includes('--help')) return named[1]();
  if (first === undefined && argv.length > 0 && argv.every((a) => a === '--version')) return [];
  return (await Promise.all(COMMANDS.map(([, load]) => load()))).flat();
}

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
    // A plain `bufr dump|summary` skips the argument parser (see bufr-fast.ts).
    if (argv[0] === 'bufr' && (await (await import('./bufr-fast.js')).runFastBufr(argv))) return;
    const [commands, { default: yargs }] = await Promise.all([commandsFor(argv), import('yargs')]);
    await yargs(argv)
      .scriptName('poller')
      .usage('$0 <command> [options]')
      .command(commands)
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

await main(process.argv.slice(2));
