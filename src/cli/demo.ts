/**
 * `poller demo`: the whole path on an embedded default. Generates a radar-like BUFR feed, serves
 * it from an FTP server on 127.0.0.1, writes a config next to it and runs one cycle: listing,
 * settle check, ledger diff, landing, plugins. Run it twice: the second run fetches nothing.
 * `--live` keeps the feed coming (a volume per radar every cadence) and runs the daemon on it,
 * with `/metrics`, the status page and lateness per radar; `--serve-feed` serves only the live
 * feed (for compose and containers, where the pollers run elsewhere).
 */

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { builtinPluginFile, PACKAGE_ROOT } from '../package-paths.js';
import { BUILTIN_PLUGINS } from '../plugins/loader.js';
import { parseDurationMs } from '../util/duration.js';
import { printLine, UsageError } from './output.js';
import { runOnce } from './run-once.js';

interface DemoArgs {
  dir: string;
  json: boolean;
  fresh: boolean;
  live: boolean;
  'serve-feed': boolean;
  cadence: string;
  grace?: string;
  'http-port': number;
  listen: string;
  port: number;
}

export interface DemoConfigOptions {
  withBufr: boolean;
  /** The daemon's settings: its HTTP port and the feed's cadence (expect: rules follow it). */
  live?: { httpPort: number; cadenceMs: number; graceMs: number };
}

export function demoConfig(dir: string, port: number, opts: DemoConfigOptions): string {
  const live = opts.live;
  const s = (ms: number) => `${Math.max(1, Math.round(ms / 1000))}s`;
  const liveSource = live
    ? `    every: ${s(live.cadenceMs / 2)}
    expectEvery: ${s(2 * live.cadenceMs)}
    expect:                               # lateness per radar: poller_product_late, status page, poller status
      - pattern: '^radar/(?<radar>[A-Z]+)/'
        products: [ARBAR, ARPAR]
        every: ${s(live.cadenceMs)}
        grace: ${s(live.graceMs)}
      - glob: 'obs/**/SYNOP_*.bufr'
        product: synop
        every: ${s(3 * live.cadenceMs)}
        grace: ${s(live.graceMs)}
`
    : '';
  return `# Written by \`poller demo\`: one FTP source, its radar files grouped into volumes. Edit and run with
#   ${pollerCommand()} ${live ? 'run' : 'run-once'} --config ${path.join(dir, 'poller.yaml')}
landing: ./landing
ledger: ./ledger.db
${live ? `http:\n  port: ${live.httpPort}\nevents:\n  centreId: demo\n  sinks:\n    - { name: events-file, type: file, url: ${JSON.stringify(path.join(dir, 'events.jsonl'))}, kinds: [processed, failed, quarantined, late, on-time] }\n` : ''}sources:
  - name: demo-radar
    url: ftp://demo@127.0.0.1:${port}/
    password: \${POLLER_DEMO_PASSWORD}      # from the environment, never written here
    include: ["radar/**/*.bufr", "obs/**/*.bufr"]
    exclude: ["**/*.tmp"]
    concurrency: 4
    minAge: ${live ? '0s' : '10s'}
    settleDelay: 1s
${liveSource}    volumes:                              # one file per moment: DBZH + VRAD make a volume
      pattern: '(?<radar>[A-Z]+)_(?<moment>[A-Z]+)_(?<time>\\d{12})\\.bufr$'
      expect: [DBZH, VRAD]
      completeAfter: 2m
plugins:
  - use: archive
    options: { root: ${JSON.stringify(path.join(dir, 'archive'))} }
${opts.withBufr ? `  - use: bufr\n    match: "**/*.bufr"\n    options: { out: ${JSON.stringify(path.join(dir, 'decoded'))} }\n  - use: radar-volume\n    options: { out: ${JSON.stringify(path.join(dir, 'volumes'))} }\n` : ''}`;
}

/**
 * How the user runs poller: `node bin/poller.js` from a checkout (the script is this package's own,
 * under the working directory), `poller` once installed.
 */
export function pollerCommand(script = process.argv[1] ?? ''): string {
  const fromCheckout = path.resolve(script) === path.join(PACKAGE_ROOT, 'bin', 'poller.js');
  if (!fromCheckout || !existsSync(path.join(PACKAGE_ROOT, '.git'))) return 'poller';
  const rel = path.relative(process.cwd(), path.join(PACKAGE_ROOT, 'bin', 'poller.js'));
  return `node ${rel.startsWith('..') ? path.join(PACKAGE_ROOT, 'bin', 'poller.js') : rel}`;
}

/** The embedded FTP server is ftp-srv, an optional dependency: without it, one line says how to get it. */
async function loadFtpServer(): Promise<typeof import('../demo/ftp-server.js')> {
  try {
    return await import('../demo/ftp-server.js');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes('ftp-srv'))
      throw new UsageError(
        'poller demo needs the optional package ftp-srv (its embedded FTP server), which is not installed; install it where poller is installed (npm install ftp-srv@4.6.3) or reinstall poller with its optional dependencies',
      );
    throw err;
  }
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
      })
      .option('live', {
        type: 'boolean',
        default: false,
        describe:
          'Keep the feed coming and run the daemon on it (metrics, status page, lateness per radar) until SIGTERM',
      })
      .option('serve-feed', {
        type: 'boolean',
        default: false,
        describe: 'Only serve the live feed over FTP (user demo, password from POLLER_DEMO_PASSWORD) until SIGTERM',
      })
      .option('cadence', { type: 'string', default: '30s', describe: 'Live feed: a new volume per radar this often' })
      .option('grace', {
        type: 'string',
        describe: '--live: how late past its cadence a radar may be before it is flagged; default one cadence',
      })
      .option('http-port', { type: 'number', default: 9464, describe: '--live: port of /metrics and the status page' })
      .option('listen', { type: 'string', default: '127.0.0.1', describe: '--serve-feed: address to listen on' })
      .option('port', { type: 'number', default: 0, describe: 'FTP port of the feed (0: any free one)' }) as never,
  handler: async (args) => {
    const cadenceMs = parseDurationMs(args.cadence);
    if (cadenceMs === undefined || cadenceMs < 500)
      throw new UsageError(`--cadence ${args.cadence}: not a duration of at least 500ms; write e.g. 30s`);
    if (args['serve-feed'] && args.live) throw new UsageError('poller demo: give --live or --serve-feed, not both');
    if (args['serve-feed']) return serveFeed(args, cadenceMs);
    if (args.live) return runLive(args, cadenceMs);
    return runOneCycle(args);
  },
};

async function prepareFeed(args: DemoArgs): Promise<string> {
  // Loaded on use: the FTP server and the BUFR encoder are not needed by any other command.
  const { writeDemoFeed } = await import('../demo/feed.js');
  const remote = path.join(path.resolve(args.dir), 'remote');
  if (args.fresh || !existsSync(remote)) {
    const files = await writeDemoFeed(remote);
    if (!args.json)
      printLine(
        `demo: generated ${files.length} files (BUFR radar volumes and SYNOP bulletins) in ${path.relative(process.cwd(), remote) || '.'}`,
      );
  }
  return remote;
}

async function writeDemoConfig(dir: string, port: number, live: DemoConfigOptions['live']): Promise<string> {
  await mkdir(dir, { recursive: true });
  const configPath = path.join(dir, 'poller.yaml');
  const withBufr = (BUILTIN_PLUGINS as readonly string[]).includes('bufr') && builtinPluginFile('bufr') !== undefined;
  await writeFile(configPath, demoConfig(dir, port, { withBufr, ...(live && { live }) }));
  return configPath;
}

async function runOneCycle(args: DemoArgs): Promise<void> {
  const { startDemoFtpServer } = await loadFtpServer();
  const dir = path.resolve(args.dir);
  const remote = await prepareFeed(args);
  const password = randomBytes(12).toString('hex');
  const server = await startDemoFtpServer({ root: remote, user: 'demo', password, port: args.port });
  try {
    process.env['POLLER_DEMO_PASSWORD'] = password;
    const configPath = await writeDemoConfig(dir, server.port, undefined);
    if (!args.json)
      printLine(`demo: FTP server on 127.0.0.1:${server.port}; config ${path.relative(process.cwd(), configPath)}\n`);
    process.exitCode = await runOnce({ config: configPath, json: args.json, dryRun: false, logLevel: 'warn' });
    if (!args.json) printLine(nextSteps(path.relative(process.cwd(), dir) || '.'));
  } finally {
    await server.close();
  }
}

function nextSteps(rel: string): string {
  const poller = pollerCommand();
  const again = poller === 'poller' ? 'poller demo' : 'npm run demo';
  const fresh = poller === 'poller' ? 'poller demo --fresh' : 'npm run demo -- --fresh';
  return `
landed files:   ${rel}/landing/demo-radar/   (complete files only; partials live in landing/.partial)
archive:        ${rel}/archive/
decoded BUFR:   ${rel}/decoded/          (JSON per file, .npy per radar sweep)
radar volumes:  ${rel}/volumes/          (a manifest and a quicklook PNG per volume)
ledger:         ${rel}/ledger.db
next:
  ${again.padEnd(46)} # again: nothing is fetched twice
  ${fresh.padEnd(46)} # a new feed: only the new files are fetched
  ${`${poller} demo --live`.padEnd(46)} # the daemon on a live feed: /metrics, status page, lateness per radar
  ${poller} status --config ${rel}/poller.yaml
  ${poller} volumes --config ${rel}/poller.yaml
  ${poller} why radar/ARBAR/upload_in_progress.bufr.tmp --config ${rel}/poller.yaml
  ${poller} bufr summary $(ls ${rel}/landing/demo-radar/radar/ARBAR/*/*/*/*DBZH* | head -1)`;
}

/** Until SIGTERM or SIGINT. */
function untilStopped(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

async function serveFeed(args: DemoArgs, cadenceMs: number): Promise<void> {
  const password = process.env['POLLER_DEMO_PASSWORD'];
  if (!password) throw new UsageError('poller demo --serve-feed: set POLLER_DEMO_PASSWORD, the password of user demo');
  const { startDemoFtpServer } = await loadFtpServer();
  const { startLiveFeed } = await import('../demo/live-feed.js');
  const remote = await prepareFeed(args);
  const feed = startLiveFeed(remote, { cadenceMs, onError: (err) => printLine(`demo feed: ${String(err)}`) });
  const server = await startDemoFtpServer({
    root: remote,
    user: 'demo',
    password,
    port: args.port,
    host: args.listen,
  });
  printLine(
    `demo feed: FTP on ${args.listen}:${server.port}, a volume per radar every ${args.cadence}; touch ${remote}/radar/<RADAR>/OFFLINE to take one off the air`,
  );
  await untilStopped();
  await feed.stop();
  await server.close();
}

async function runLive(args: DemoArgs, cadenceMs: number): Promise<void> {
  const { startDemoFtpServer } = await loadFtpServer();
  const { startLiveFeed, offlineMarker } = await import('../demo/live-feed.js');
  const { runDaemon } = await import('./run.js');
  const dir = path.resolve(args.dir);
  const remote = await prepareFeed(args);
  const password = randomBytes(12).toString('hex');
  const server = await startDemoFtpServer({ root: remote, user: 'demo', password, port: args.port });
  const feed = startLiveFeed(remote, { cadenceMs, onError: (err) => printLine(`demo feed: ${String(err)}`) });
  try {
    process.env['POLLER_DEMO_PASSWORD'] = password;
    const graceMs = args.grace === undefined ? cadenceMs : parseDurationMs(args.grace);
    if (graceMs === undefined) throw new UsageError(`--grace ${args.grace}: not a duration; write e.g. 30s`);
    const configPath = await writeDemoConfig(dir, server.port, { httpPort: args['http-port'], cadenceMs, graceMs });
    const rel = path.relative(process.cwd(), dir) || '.';
    process.stderr.write(
      `demo: live feed on 127.0.0.1:${server.port} (a volume per radar every ${args.cadence}), config ${rel}/poller.yaml
demo: status page http://127.0.0.1:${args['http-port']}/  metrics http://127.0.0.1:${args['http-port']}/metrics
demo: take a radar off the air with  touch ${path.relative(process.cwd(), offlineMarker(remote, 'ARPAR'))}  (poller_product_late{product="ARPAR"} goes to 1)
`,
    );
    process.exitCode = await runDaemon({ config: configPath, json: false, grace: '10s', logLevel: 'info' });
  } finally {
    await feed.stop();
    await server.close();
  }
}
