/**
 * `poller demo`: the whole path on an embedded default. Generates a radar-like BUFR feed, serves
 * it from an FTP server on 127.0.0.1, writes a config next to it and runs one cycle: listing,
 * settle check, ledger diff, landing, plugins. Run it twice: the second run fetches nothing.
 */

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { builtinPluginFile } from '../package-paths.js';
import { BUILTIN_PLUGINS } from '../plugins/loader.js';
import { printLine } from './output.js';
import { runOnce } from './run-once.js';

interface DemoArgs {
  dir: string;
  json: boolean;
  fresh: boolean;
}

export function demoConfig(dir: string, port: number, withBufr: boolean): string {
  return `# Written by \`poller demo\`: one FTP source, its radar files grouped into volumes. Edit and run with
#   poller run-once --config ${path.join(dir, 'poller.yaml')}
landing: ./landing
ledger: ./ledger.db
sources:
  - name: demo-radar
    url: ftp://demo@127.0.0.1:${port}/
    password: \${POLLER_DEMO_PASSWORD}      # from the environment, never written here
    include: ["radar/**/*.bufr", "obs/**/*.bufr"]
    exclude: ["**/*.tmp"]
    concurrency: 4
    minAge: 10s
    settleDelay: 1s
    volumes:                              # one file per moment: DBZH + VRAD make a volume
      pattern: '(?<radar>[A-Z]+)_(?<moment>[A-Z]+)_(?<time>\\d{12})\\.bufr$'
      expect: [DBZH, VRAD]
      completeAfter: 2m
plugins:
  - use: archive
    options: { root: ${JSON.stringify(path.join(dir, 'archive'))} }
${withBufr ? `  - use: bufr\n    match: "**/*.bufr"\n    options: { out: ${JSON.stringify(path.join(dir, 'decoded'))} }\n  - use: radar-volume\n    options: { out: ${JSON.stringify(path.join(dir, 'volumes'))} }\n` : ''}`;
}

export const demoCommand: CommandModule<object, DemoArgs> = {
  command: 'demo',
  describe: 'Run one cycle against an embedded FTP server serving a generated radar feed',
  builder: (y) =>
    y
      .option('dir', { type: 'string', default: '.poller-demo', describe: 'Working directory of the demo' })
      .option('json', { type: 'boolean', default: false })
      .option('fresh', {
        type: 'boolean',
        default: false,
        describe: 'Regenerate the feed (new files appear)',
      }) as never,
  handler: async (args) => {
    // Loaded on use: the FTP server and the BUFR encoder are not needed by any other command.
    const { writeDemoFeed } = await import('../demo/feed.js');
    const { startDemoFtpServer } = await import('../demo/ftp-server.js');
    const dir = path.resolve(args.dir);
    const remote = path.join(dir, 'remote');
    if (args.fresh || !existsSync(remote)) {
      const files = await writeDemoFeed(remote);
      if (!args.json)
        printLine(
          `demo: generated ${files.length} files (BUFR radar volumes and SYNOP bulletins) in ${path.relative(process.cwd(), remote) || '.'}`,
        );
    }
    const password = randomBytes(12).toString('hex');
    const server = await startDemoFtpServer({ root: remote, user: 'demo', password });
    try {
      process.env['POLLER_DEMO_PASSWORD'] = password;
      await mkdir(dir, { recursive: true });
      const configPath = path.join(dir, 'poller.yaml');
      const withBufr = (BUILTIN_PLUGINS as readonly string[]).includes('bufr') && existsBuiltin('bufr');
      await writeFile(configPath, demoConfig(dir, server.port, withBufr));
      if (!args.json)
        printLine(`demo: FTP server on 127.0.0.1:${server.port}; config ${path.relative(process.cwd(), configPath)}\n`);
      process.exitCode = await runOnce({ config: configPath, json: args.json, dryRun: false, logLevel: 'warn' });
      if (!args.json) {
        const rel = path.relative(process.cwd(), dir) || '.';
        printLine(`
landed files:   ${rel}/landing/demo-radar/   (complete files only; partials live in landing/.partial)
archive:        ${rel}/archive/
decoded BUFR:   ${rel}/decoded/          (JSON per file, .npy per radar sweep)
radar volumes:  ${rel}/volumes/          (a manifest and a quicklook PNG per volume)
ledger:         ${rel}/ledger.db
next:
  npm run demo                                   # again: nothing is fetched twice
  npm run demo -- --fresh                        # a new feed: only the new files are fetched
  node bin/poller.js status --config ${rel}/poller.yaml
  node bin/poller.js volumes --config ${rel}/poller.yaml
  node bin/poller.js why radar/ARBAR/upload_in_progress.bufr.tmp --config ${rel}/poller.yaml
  node bin/poller.js bufr summary $(ls ${rel}/landing/demo-radar/radar/ARBAR/*/*/*/*DBZH* | head -1)`);
      }
    } finally {
      await server.close();
    }
  },
};

function existsBuiltin(name: string): boolean {
  return builtinPluginFile(name) !== undefined;
}
