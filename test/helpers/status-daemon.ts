/**
 * A daemon for the status page tests: three FTP sources on two real ftp-srv servers and a plugin
 * that fails on `bad-*` files, so the page has an ok source, a late one, one whose server can be
 * stopped, and a failure to explain. Optional basic auth and a bearer token, from files.
 */
import { utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Daemon, startDaemon } from './daemon.js';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from './engine-env.js';
import { startFtpServer, type TestFtpServer } from './ftp-server.js';

export const FTP_PASSWORD = 'Ftp-S3cret-pw-5519!';
export const HTTP_USER = 'operator';
export const HTTP_PASSWORD = 'Http-Pw-8842!x';
export const HTTP_TOKEN = 'tok-3391-abcdef-Secret';

export interface StatusDaemon {
  env: EngineEnv;
  daemon: Daemon;
  /** The second FTP server, behind the `east` source: close it to make the source fail. */
  east: TestFtpServer;
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** Headers that pass the basic auth (empty without auth). */
  authHeaders: Record<string, string>;
  /** Write a file on the `north` source's server, modified `ageMs` ago. */
  putNorth(name: string, content: string, ageMs?: number): Promise<void>;
  close(): Promise<void>;
}

const MINUTE = 60_000;

export async function startStatusDaemon(opts: { auth: boolean }): Promise<StatusDaemon> {
  const env = await startEngineEnv({ ftp: { password: FTP_PASSWORD } });
  const east = await startFtpServer({ password: FTP_PASSWORD });
  const ftpUrl = (port: number, dir: string) => `ftp://${env.ftp.user}@127.0.0.1:${port}/${dir}`;
  const common = {
    password: '${TEST_FTP_PASSWORD}',
    include: ['**/*.bufr'],
    settleDelay: '100ms',
    every: '300ms',
  };
  const passwordFile = path.join(env.dir, 'http-password');
  const tokenFile = path.join(env.dir, 'http-token');
  await writeFile(passwordFile, `${HTTP_PASSWORD}\n`, { mode: 0o600 });
  await writeFile(tokenFile, `${HTTP_TOKEN}\n`, { mode: 0o600 });
  const config = {
    landing: './landing',
    ledger: './ledger.db',
    retryBase: '50ms',
    retryMax: '200ms',
    log: { level: 'info' },
    // No host: the default (127.0.0.1) is what is tested.
    http: {
      port: 0,
      refresh: '500ms',
      ...(opts.auth && { auth: { user: HTTP_USER, passwordFile, tokenFile } }),
    },
    sources: [
      { name: 'north', url: ftpUrl(env.ftp.port, 'north'), expectEvery: '1h', ...common },
      { name: 'south', url: ftpUrl(env.ftp.port, 'south'), expectEvery: '10m', ...common },
      { name: 'east', url: ftpUrl(east.port, ''), expectEvery: '1h', ...common },
    ],
    plugins: [
      { use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log: env.recordLog } },
      { use: path.join(FIXTURE_PLUGINS, 'throws.mjs'), match: ['**/bad-*.bufr'], maxAttempts: 2 },
    ],
  };
  await writeFile(env.configPath, JSON.stringify(config, null, 2));

  const putNorth = (name: string, content: string, ageMs = MINUTE) =>
    env.put(`north/${name}`, content, Date.now() - ageMs);
  await putNorth('n1.bufr', 'north volume 1');
  await putNorth('n2.bufr', 'north volume 2');
  await putNorth('bad-1.bufr', 'a volume the plugin refuses');
  // Older than its 10 min cadence, younger than three: late (amber), not missing.
  await env.put('south/s1.bufr', 'south volume', Date.now() - 15 * MINUTE);
  const eastFile = path.join(east.root, 'e1.bufr');
  await writeFile(eastFile, 'east volume');
  const t = new Date(Date.now() - MINUTE);
  await utimes(eastFile, t, t);

  const daemon = await startDaemon(env);
  const listening = daemon.lines().find((l) => l.event === 'http.listening');
  const base = `http://127.0.0.1:${String(listening?.['port'])}`;
  const authHeaders: Record<string, string> = opts.auth
    ? { Authorization: `Basic ${Buffer.from(`${HTTP_USER}:${HTTP_PASSWORD}`).toString('base64')}` }
    : {};
  return {
    env,
    daemon,
    east,
    base,
    authHeaders,
    putNorth,
    async close() {
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      await east.close();
      await env.close();
    },
  };
}
