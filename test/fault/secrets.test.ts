/**
 * Secrets stay secret: every command runs against an FTP source with a known password and an
 * SFTP source with a passphrase-protected key, at debug log level; neither secret may appear in
 * stdout, stderr (the log), the ledger or any file the poller writes, or in `ps` while it runs.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';
import { type SftpTestServer, startSftpServer } from '../helpers/sftp-server.js';

const run = promisify(execFile);
const FTP_PASSWORD = 'Ftp-S3cret-pw-4471!';
const WRONG_PASSWORD = 'Wr0ng-S3cret-pw-9023';

let env: EngineEnv | undefined;
let sftp: SftpTestServer | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
  await sftp?.close();
  sftp = undefined;
});

/** The ways a secret could leak: as is, URL-encoded, base64. */
function forms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64')];
}

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile()) out.push(path.join(d.parentPath, d.name));
  }
  return out;
}

it('no command prints, logs, stores or exposes the password or the key passphrase', { timeout: 60_000 }, async () => {
  sftp = await startSftpServer();
  env = await startEngineEnv({
    ftp: { password: FTP_PASSWORD },
    plugins: (_dir, log) => [
      { use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log, delayMs: 150 }, concurrency: 1 },
    ],
  });
  const e = env;
  const secrets = [FTP_PASSWORD, sftp.passphrase, WRONG_PASSWORD];
  const keyFile = path.join(e.dir, 'client_key');
  await writeFile(keyFile, sftp.encryptedPrivateKey, { mode: 0o600 });
  const config = JSON.parse(await readFile(e.configPath, 'utf8')) as {
    sources: Array<Record<string, unknown>>;
    log: { level: string };
  };
  config.log.level = 'debug';
  config.sources.push({
    name: 'radar-sftp',
    url: `sftp://${sftp.user}@127.0.0.1:${sftp.port}/`,
    privateKeyFile: keyFile,
    passphrase: '${TEST_SFTP_PASSPHRASE}',
    hostKey: sftp.hostKeyFingerprint,
    include: ['**/*.bufr'],
    settleDelay: '100ms',
  });
  await writeFile(e.configPath, JSON.stringify(config, null, 2));
  const secretEnv = { TEST_SFTP_PASSPHRASE: sftp.passphrase };
  for (let i = 0; i < 4; i++) await e.put(`a/${i}.bufr`, `ftp radar volume ${i}`);
  for (let i = 0; i < 2; i++) await writeFile(path.join(sftp.root, `s${i}.bufr`), `sftp radar volume ${i}`);

  const outputs: Array<{ command: string; text: string }> = [];
  const cli = async (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    const r = await e.cli([...args, '--log-level', 'debug'], { env: { ...secretEnv, ...extraEnv } });
    outputs.push({ command: args.join(' '), text: r.stdout + r.stderr });
    return r;
  };

  // run-once, with `ps` sampled while it is in flight.
  const child = e.spawnCli(['run-once', '--json', '--log-level', 'debug'], secretEnv);
  let runOut = '';
  child.stdout?.on('data', (d: Buffer) => {
    runOut += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    runOut += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  let psSamples = 0;
  let psSawPoller = 0;
  let psText = '';
  let running = true;
  void exited.then(() => {
    running = false;
  });
  while (running) {
    const { stdout } = await run('ps', ['-eo', 'args']);
    psSamples++;
    if (stdout.includes(`poller.js run-once`)) psSawPoller++;
    psText += stdout;
  }
  expect(await exited, runOut).toBe(0);
  outputs.push({ command: 'run-once --json', text: runOut });
  expect(psSawPoller).toBeGreaterThan(0);
  expect(runOut).toContain('"name":"radar-sftp"');

  // Read-only commands side by side; then the ones that write the ledger, one at a time.
  const results = await Promise.all([
    cli(['status']),
    cli(['status', '--json']),
    cli(['files']),
    cli(['files', '--json']),
    cli(['why', 'a/0.bufr']),
    cli(['why', 's0.bufr', '--source', 'radar-sftp']),
    cli(['plugins']),
    cli(['check']),
    cli(['check', '--json']),
  ]);
  results.push(await cli(['retry']));
  results.push(await cli(['forget', '--source', 'radar', '--path', 'a/3.bufr']));
  results.push(await cli(['run-once', '--json']));
  for (const r of results) expect(r.code, r.stdout + r.stderr).toBe(0);
  // Failure paths print more: a wrong password, and a wrong passphrase.
  const wrong = await cli(['run-once', '--json'], { TEST_FTP_PASSWORD: WRONG_PASSWORD });
  expect(wrong.code).toBe(1);
  expect(wrong.stdout + wrong.stderr).toMatch(/login rejected/);
  const wrongCheck = await cli(['check'], { TEST_FTP_PASSWORD: WRONG_PASSWORD, TEST_SFTP_PASSPHRASE: 'not it' });
  expect(wrongCheck.code).not.toBe(0);

  let scanned = 0;
  for (const { command, text } of outputs) {
    for (const s of secrets)
      for (const f of forms(s)) expect(text.includes(f), `${command} printed a secret`).toBe(false);
    scanned += text.length;
  }
  for (const s of secrets) for (const f of forms(s)) expect(psText.includes(f), 'ps shows a secret').toBe(false);
  // Every file the poller wrote: ledger (and its WAL), landing, plugin state, logs of plugins.
  const files = (await allFiles(e.dir)).filter((f) => f !== keyFile);
  let fileBytes = 0;
  for (const f of files) {
    const bytes = await readFile(f);
    fileBytes += bytes.length;
    for (const s of secrets)
      for (const form of forms(s)) expect(bytes.includes(form), `${f} holds a secret`).toBe(false);
  }
  expect(files.some((f) => f.endsWith('ledger.db'))).toBe(true);
  console.log(
    `secrets: ${outputs.length} command runs (${scanned} bytes of stdout+stderr at debug level), ${files.length} files ` +
      `(${fileBytes} bytes, ledger included), ${psSamples} ps samples (${psSawPoller} showing the poller): ` +
      `password and passphrase never seen`,
  );
});
