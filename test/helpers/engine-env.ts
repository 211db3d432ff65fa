/**
 * A poller set up end to end for tests: an in-process FTP server (ftp-srv) with a tmp root, a
 * config file, a real SQLite ledger and landing dir; run cycles in process or the built CLI as
 * a child process.
 */
import { spawn } from 'node:child_process';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openApp } from '../../src/cli/app.js';
import { type CycleSummary, runCycle } from '../../src/engine/cycle.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import { type StartFtpServerOptions, startFtpServer, type TestFtpServer } from './ftp-server.js';
import { makeTmpDir, type TmpDir } from './tmp-dir.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURE_PLUGINS = path.join(REPO_ROOT, 'test', 'fixtures', 'plugins');
const CLI = path.join(REPO_ROOT, 'bin', 'poller.js');

export interface EngineEnvOptions {
  ftp?: StartFtpServerOptions;
  source?: Record<string, unknown>;
  /** Plugin entries of the config; a function gets the env's dir and record log path. */
  plugins?: Array<Record<string, unknown>> | ((dir: string, recordLog: string) => Array<Record<string, unknown>>);
  /** Written as the source password instead of the server's (to test a wrong one). */
  password?: string;
  /** Top-level config keys added to (or replacing) the defaults. */
  config?: Record<string, unknown>;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface EngineEnv {
  ftp: TestFtpServer;
  dir: string;
  configPath: string;
  landing: string;
  ledgerPath: string;
  /** The JSON-lines file the `record` test plugin writes. */
  recordLog: string;
  /** Create a file on the server; mtime defaults to an hour ago (old enough to be taken at first sight). */
  put(rel: string, content: string | Uint8Array, mtimeMs?: number): Promise<void>;
  /** One cycle in process, like run-once (settle listings inside the cycle unless told otherwise). */
  cycle(opts?: { settleWithinCycle?: boolean }): Promise<CycleSummary>;
  /** Run the built CLI, with `--config <env config>` appended unless args give one. */
  cli(args: string[], opts?: { env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  /** Start the CLI and return the child (for kill -9 tests); `env` adds to its environment. */
  spawnCli(args: string[], env?: NodeJS.ProcessEnv): ReturnType<typeof spawn>;
  ledger(): SqliteLedger;
  close(): Promise<void>;
}

export async function startEngineEnv(opts: EngineEnvOptions = {}): Promise<EngineEnv> {
  const ftp = await startFtpServer(opts.ftp);
  const tmp: TmpDir = await makeTmpDir('poller-engine-');
  const dir = tmp.path;
  const recordLog = path.join(dir, 'record.jsonl');
  const config = {
    landing: './landing',
    ledger: './ledger.db',
    retryBase: '50ms',
    retryMax: '200ms',
    log: { level: 'warn' },
    sources: [
      {
        name: 'radar',
        url: `ftp://${ftp.user}@127.0.0.1:${ftp.port}/`,
        password: '${TEST_FTP_PASSWORD}',
        include: ['**/*.bufr'],
        settleDelay: '100ms',
        ...opts.source,
      },
    ],
    plugins:
      typeof opts.plugins === 'function'
        ? opts.plugins(dir, recordLog)
        : (opts.plugins ?? [{ use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log: recordLog } }]),
    ...opts.config,
  };
  const configPath = path.join(dir, 'poller.yaml');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const password = opts.password ?? ftp.password;
  const env = { ...process.env, TEST_FTP_PASSWORD: password };
  const ledgers: SqliteLedger[] = [];
  const children: Array<ReturnType<typeof spawn>> = [];

  const spawnCli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    const withConfig = args.includes('--config') ? args : [...args, '--config', configPath];
    const child = spawn(process.execPath, [CLI, ...withConfig], {
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    return child;
  };

  return {
    ftp,
    dir,
    configPath,
    landing: path.join(dir, 'landing'),
    ledgerPath: path.join(dir, 'ledger.db'),
    recordLog,
    async put(rel, content, mtimeMs = Date.now() - 3_600_000) {
      const full = path.join(ftp.root, ...rel.split('/'));
      await mkdir(path.dirname(full), { recursive: true });
      await writeFile(full, content);
      const t = new Date(mtimeMs);
      await utimes(full, t, t);
    },
    async cycle(o = {}) {
      const saved = process.env['TEST_FTP_PASSWORD'];
      process.env['TEST_FTP_PASSWORD'] = password;
      const app = await openApp({ configPath, logTo: 'stderr', logLevel: 'silent' });
      try {
        const src = app.config.sources[0]!;
        return await runCycle(src, app.source(src), await app.cycleDeps(), {
          signal: app.shutdown.signal,
          settleWithinCycle: o.settleWithinCycle ?? true,
        });
      } finally {
        await app.close();
        if (saved === undefined) delete process.env['TEST_FTP_PASSWORD'];
        else process.env['TEST_FTP_PASSWORD'] = saved;
      }
    },
    cli(args, o = {}) {
      return new Promise((resolve, reject) => {
        const child = spawnCli(args, o.env);
        let stdout = '';
        let stderr = '';
        child.stdout?.on('data', (d: Buffer) => {
          stdout += d.toString();
        });
        child.stderr?.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        child.on('error', reject);
        child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
      });
    },
    spawnCli: (args, extraEnv) => spawnCli(args, extraEnv),
    ledger() {
      const l = new SqliteLedger(path.join(dir, 'ledger.db'));
      ledgers.push(l);
      return l;
    },
    async close() {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      for (const l of ledgers) await l.close();
      await ftp.close();
      await tmp.remove();
    },
  };
}
