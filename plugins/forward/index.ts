/**
 * forward: push each file to another FTP, FTPS or SFTP server. Uploads go to a temporary name
 * and are renamed into place, so a consumer on the far side never sees half a file; the
 * remote directories are made as needed; connections are pooled across files; transient
 * failures are retried here with backoff before the run itself fails.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { definePlugin, durationMs, PermanentError, type PluginFile, TransientError } from '../../src/plugins/api.js';
import { createPool, type Pool } from './pool.js';
import { openTarget, type Target, type TargetSettings } from './targets.js';

const duration = durationMs();

const PROTOCOLS = ['ftp', 'ftps', 'sftp'] as const;

const options = z
  .strictObject({
    /** `ftp://user@host[:port]/base`, `ftps://…`, `sftp://…`. No password here. */
    url: z.string(),
    /** Password (usually `${ENV_VAR}` in the config). */
    password: z.string().optional(),
    /** File holding the password, e.g. `${CREDENTIALS_DIRECTORY}/forward`. One trailing newline is ignored. */
    passwordFile: z.string().optional(),
    /** SFTP: private key file (OpenSSH or PEM). */
    privateKey: z.string().optional(),
    /** SFTP: passphrase of the private key. */
    passphrase: z.string().optional(),
    /** SFTP: the server's host key fingerprint, `SHA256:…` as `ssh-keygen -lf` prints it. Required unless insecure. */
    hostKey: z.string().optional(),
    /** FTPS: CA certificate file (PEM) to trust instead of the system store. */
    ca: z.string().optional(),
    /** Skip TLS certificate and SSH host key verification. Test setups only. @default false */
    insecure: z.boolean().default(false),
    /** FTPS: implicit TLS (usually port 990) instead of AUTH TLS. @default false */
    implicitTls: z.boolean().default(false),
    /** Remote directory under the URL path: `{remoteDir}`, `{source}`, `{YYYY}` `{MM}` `{DD}` `{HH}` (UTC of the file mtime). */
    dir: z.string().default('{remoteDir}'),
    /** Appended to the name while uploading. @default .part */
    tempSuffix: z
      .string()
      .min(1)
      .regex(/^[^/\\]+$/, 'no slashes')
      .default('.part'),
    /** When the remote file exists: replace it, skip the upload, or fail the file. @default replace */
    overwrite: z.enum(['replace', 'skip', 'fail']).default('replace'),
    /** Connections kept open to the server and shared by concurrent runs. @default 2 */
    concurrency: z.number().int().min(1).max(32).default(2),
    /** Extra attempts inside one run for transient failures. @default 3 */
    retries: z.number().int().min(0).max(10).default(3),
    /** First retry delay; doubles each time, with jitter, up to 30 s. @default 1s */
    retryDelay: duration.default(1000),
    /** @default 15s */
    connectTimeout: duration.default(15_000),
    /** Inactivity timeout of a reply or transfer. @default 30s */
    timeout: duration.default(30_000),
  })
  .superRefine((o, ctx) => {
    const parsed = parseUrl(o.url);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', path: ['url'], message: parsed });
      return;
    }
    if (o.password !== undefined && o.passwordFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'give password or passwordFile, not both' });
    }
    if (parsed.protocol === 'sftp' && o.hostKey === undefined && !o.insecure) {
      ctx.addIssue({
        code: 'custom',
        path: ['hostKey'],
        message: 'required for sftp (ssh-keygen -lf on the server key prints it), or set insecure: true for tests',
      });
    }
    if (parsed.protocol !== 'sftp' && (o.privateKey !== undefined || o.hostKey !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['privateKey'], message: 'privateKey and hostKey are for sftp:// only' });
    }
    if (parsed.protocol !== 'ftps' && (o.ca !== undefined || o.implicitTls)) {
      ctx.addIssue({ code: 'custom', path: ['ca'], message: 'ca and implicitTls are for ftps:// only' });
    }
  });

export type ForwardOptions = z.output<typeof options>;

interface ParsedUrl {
  protocol: (typeof PROTOCOLS)[number];
  host: string;
  port?: number;
  user: string;
  basePath: string;
}

/** Parse the destination URL, or say what is wrong with it (never echoing a password). */
export function parseUrl(text: string): ParsedUrl | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL; expected ftp://user@host/dir, ftps://… or sftp://…';
  }
  const protocol = url.protocol.replace(/:$/, '');
  if (!(PROTOCOLS as readonly string[]).includes(protocol)) {
    return `scheme "${protocol}" is not supported; use ftp, ftps or sftp`;
  }
  if (url.password !== '') return 'remove the password from the URL; use password or passwordFile';
  if (url.username === '') return 'give the user in the URL: sftp://user@host/dir';
  if (url.hostname === '') return 'the URL has no host';
  const basePath = path.posix.normalize(decodeURIComponent(url.pathname) || '/');
  return {
    protocol: protocol as ParsedUrl['protocol'],
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    ...(url.port === '' ? {} : { port: Number(url.port) }),
    user: decodeURIComponent(url.username),
    basePath: basePath.startsWith('/') ? basePath : `/${basePath}`,
  };
}

interface Destination {
  pool: Pool<Target>;
  /** `sftp://host:22`, for logs and emitted outputs. */
  displayUrl: string;
  basePath: string;
  refs: number;
}

// One pool per distinct options object, shared by setup, process and teardown. A plugin
// listed twice in the config with different options gets two pools.
const destinations = new Map<string, Promise<Destination>>();

function destinationFor(o: ForwardOptions): Promise<Destination> {
  const key = JSON.stringify(o);
  let entry = destinations.get(key);
  if (entry === undefined) {
    entry = openDestination(o);
    destinations.set(key, entry);
    entry.catch(() => destinations.delete(key));
  }
  return entry;
}

async function openDestination(o: ForwardOptions): Promise<Destination> {
  const parsed = parseUrl(o.url);
  if (typeof parsed === 'string') throw new PermanentError('FORWARD_BAD_URL', `url: ${parsed}`);
  const port = parsed.port ?? (parsed.protocol === 'sftp' ? 22 : o.implicitTls ? 990 : 21);
  const settings: TargetSettings = {
    protocol: parsed.protocol,
    host: parsed.host,
    port,
    user: parsed.user,
    implicitTls: o.implicitTls,
    insecure: o.insecure,
    connectTimeoutMs: o.connectTimeout,
    idleTimeoutMs: o.timeout,
  };
  const password =
    o.passwordFile === undefined
      ? o.password
      : (await readSecret(o.passwordFile, 'passwordFile')).toString('utf8').replace(/\r?\n$/, '');
  if (password !== undefined) settings.password = password;
  if (o.privateKey !== undefined) settings.privateKey = await readSecret(o.privateKey, 'privateKey');
  if (o.passphrase !== undefined) settings.passphrase = o.passphrase;
  if (o.hostKey !== undefined) settings.hostKey = o.hostKey;
  if (o.ca !== undefined) settings.ca = (await readSecret(o.ca, 'ca')).toString('utf8');
  const host = parsed.host.includes(':') ? `[${parsed.host}]` : parsed.host;
  return {
    pool: createPool(o.concurrency, (signal) => openTarget(settings, signal)),
    displayUrl: `${parsed.protocol}://${host}:${port}`,
    basePath: parsed.basePath,
    refs: 0,
  };
}

async function readSecret(file: string, option: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new PermanentError(
      'FORWARD_CREDENTIAL_UNREADABLE',
      `${option}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); check the path and LoadCredential=`,
      { cause: err },
    );
  }
}

/** The remote directory for a file: the `dir` template, kept inside the URL's base path. */
export function remoteDirFor(file: PluginFile, template: string, basePath: string): string {
  const mtime = new Date(file.mtimeMs);
  const pad = (n: number) => String(n).padStart(2, '0');
  const remoteDir = path.posix.dirname(file.remotePath);
  const values: Record<string, string> = {
    remoteDir: remoteDir === '.' ? '' : remoteDir,
    source: file.source,
    YYYY: String(mtime.getUTCFullYear()),
    MM: pad(mtime.getUTCMonth() + 1),
    DD: pad(mtime.getUTCDate()),
    HH: pad(mtime.getUTCHours()),
  };
  const rendered = template.replace(/\{(remoteDir|source|YYYY|MM|DD|HH)\}/g, (_m, key: string) => values[key] ?? '');
  if (rendered.split('/').includes('..') || rendered.includes('\0')) {
    throw new PermanentError('FORWARD_BAD_PATH', `dir "${rendered}" for ${file.remotePath} leaves the base directory`);
  }
  return path.posix.join(basePath, rendered);
}

// Bound on one retry delay, whatever retryDelay and the attempt number say.
const MAX_RETRY_DELAY_MS = 30_000;

function backoffMs(baseMs: number, retry: number): number {
  const ceiling = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** (retry - 1));
  // "Equal jitter": at least half the ceiling, so retries spread out without collapsing to 0.
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

type Outcome = 'uploaded' | 'skipped';

async function uploadOnce(
  conn: Target,
  o: ForwardOptions,
  localPath: string,
  finalPath: string,
  signal: AbortSignal,
): Promise<Outcome> {
  const tempPath = `${finalPath}${o.tempSuffix}`;
  await conn.ensureDir(path.posix.dirname(finalPath), signal);
  if (o.overwrite !== 'replace' && (await conn.exists(finalPath, signal))) {
    if (o.overwrite === 'skip') return 'skipped';
    throw new PermanentError('FORWARD_TARGET_EXISTS', `${finalPath} already exists on the server (overwrite: fail)`);
  }
  try {
    await conn.upload(localPath, tempPath, signal);
    try {
      await conn.rename(tempPath, finalPath, signal);
    } catch (err) {
      // Some servers refuse to rename over an existing file (OpenSSH's SFTP v3 rename, IIS FTP):
      // delete the old copy and rename again. Only when the target is really there, so a
      // rename refused for another reason never costs the old copy.
      if (o.overwrite !== 'replace' || !(err instanceof PermanentError) || !(await conn.exists(finalPath, signal))) {
        throw err;
      }
      await conn.remove(finalPath, signal);
      await conn.rename(tempPath, finalPath, signal);
    }
    return 'uploaded';
  } catch (err) {
    // Leave no temporary file behind while the connection still works; best effort.
    if (!conn.broken && !signal.aborted) await conn.remove(tempPath, signal).catch(() => {});
    throw err;
  }
}

export default definePlugin({
  name: 'forward',
  options,
  timeoutMs: 300_000,
  // Uploads wait on the network; a worker each would open its own connection pool per target.
  isolate: 'none',
  async setup(ctx) {
    const destination = await destinationFor(ctx.options);
    destination.refs++;
    ctx.log.info(
      { event: 'forward.ready', to: destination.displayUrl, concurrency: ctx.options.concurrency },
      'forward ready',
    );
  },
  async process(file, ctx) {
    const o = ctx.options;
    const destination = await destinationFor(o);
    const name = path.posix.basename(file.remotePath);
    const finalPath = path.posix.join(remoteDirFor(file, o.dir, destination.basePath), name);
    const to = `${destination.displayUrl}${finalPath}`;

    try {
      await stat(file.localPath);
    } catch (err) {
      throw new PermanentError('FORWARD_LOCAL_MISSING', `${file.localPath}: landed file is missing`, { cause: err });
    }

    const started = performance.now();
    const aborted = () =>
      new TransientError('FORWARD_ABORTED', `upload to ${to} stopped: the run was aborted`, {
        cause: ctx.signal.reason,
      });
    // Bounded: `retries` is at most 10 (schema).
    for (let attempt = 1; ; attempt++) {
      let conn: Target | undefined;
      let outcome: Outcome | undefined;
      let failure: unknown;
      try {
        conn = await destination.pool.acquire(ctx.signal);
        outcome = await uploadOnce(conn, o, file.localPath, finalPath, ctx.signal);
      } catch (err) {
        failure = err;
      } finally {
        if (conn !== undefined) destination.pool.release(conn);
      }
      const durationMs = Math.round(performance.now() - started);
      if (outcome === 'skipped') {
        ctx.log.info({ event: 'forward.skipped', to, durationMs }, 'remote file exists; skipped (overwrite: skip)');
        return;
      }
      if (outcome === 'uploaded') {
        ctx.log.info({ event: 'forward.uploaded', to, bytes: file.sizeBytes, durationMs, attempt }, 'forwarded');
        ctx.emit({ path: to, kind: 'forward' });
        return;
      }
      if (ctx.signal.aborted) throw aborted();
      if (!(failure instanceof TransientError) || attempt > o.retries) throw failure;
      const delayMs = backoffMs(o.retryDelay, attempt);
      ctx.log.warn({ event: 'forward.retried', err: failure, to, attempt, delayMs }, 'upload failed; retrying');
      await sleep(delayMs, ctx.signal).catch(() => {
        throw aborted();
      });
    }
  },
  async teardown(ctx) {
    const key = JSON.stringify(ctx.options);
    const entry = destinations.get(key);
    if (entry === undefined) return;
    const destination = await entry.catch(() => undefined);
    if (destination === undefined) return;
    destination.refs--;
    if (destination.refs <= 0) {
      destinations.delete(key);
      destination.pool.close();
    }
  },
});
