/**
 * Opens the Source for a configured source, by URL scheme. Each kind's module (and its client
 * library: undici, ssh2, chokidar) is imported only when a config uses it: an FTP-only run-once
 * does not pay ~100 ms and ~10 MB for the HTTP and S3 clients it never calls.
 */
import type { Logger } from 'pino';
import type { HostBudget } from './ftp/host-budget.js';
import type { Source, SourceConnectOptions, SourceProtocol, SourceSettings } from './source.js';

type Protocol = SourceProtocol;
type SourceFactory = (opts: SourceConnectOptions, shared: SharedSourceState) => Source;

const LOADERS: Record<Protocol, () => Promise<SourceFactory>> = {
  ftp: loadFtp,
  ftps: loadFtp,
  sftp: async () => {
    const { createSftpSource } = await import('./sftp/sftp-source.js');
    return (opts) => createSftpSource(opts);
  },
  file: async () => {
    const { createLocalSource } = await import('./local/local-source.js');
    return (opts) => createLocalSource(opts);
  },
  http: loadHttp,
  https: loadHttp,
  s3: async () => {
    const { createS3Source } = await import('./s3/s3-source.js');
    return (opts) => createS3Source(opts);
  },
  'wis2+mqtt': loadWis2,
  'wis2+mqtts': loadWis2,
  'wis2+wss': loadWis2,
};

async function loadWis2(): Promise<SourceFactory> {
  const { createWis2Source } = await import('./wis2/wis2-source.js');
  return (opts) => createWis2Source(opts);
}

async function loadFtp(): Promise<SourceFactory> {
  const { createFtpSource } = await import('./ftp/ftp-source.js');
  return (opts, shared) => createFtpSource({ ...opts, hostBudget: shared.hostBudget });
}

async function loadHttp(): Promise<SourceFactory> {
  const { createHttpSource } = await import('./http/http-source.js');
  return (opts) => createHttpSource(opts);
}

/** Factories of the kinds imported so far (module imports are process-wide anyway). */
const factories = new Map<Protocol, SourceFactory>();

/** Imports the source kinds these sources use; openSource then opens them synchronously. */
export async function loadSourceKinds(sources: Iterable<Pick<SourceSettings, 'protocol'>>): Promise<void> {
  for (const protocol of new Set([...sources].map((s) => s.protocol))) {
    if (!factories.has(protocol)) factories.set(protocol, await LOADERS[protocol]());
  }
}

export function connectOptions(src: SourceSettings, log: Logger): SourceConnectOptions {
  return {
    name: src.name,
    protocol: src.protocol,
    host: src.host,
    port: src.port,
    user: src.user,
    rootPath: src.rootPath,
    ...(src.password !== undefined && { password: src.password }),
    ...(src.privateKey !== undefined && { privateKey: src.privateKey }),
    ...(src.passphrase !== undefined && { passphrase: src.passphrase }),
    tls: src.tls,
    ...(src.hostKey !== undefined && { hostKey: src.hostKey }),
    ...(src.knownHosts !== undefined && { knownHosts: src.knownHosts }),
    timezone: src.timezone,
    maxConnections: src.maxConnections,
    connectTimeoutMs: src.connectTimeoutMs,
    dataTimeoutMs: src.dataTimeoutMs,
    ...(src.bearerToken !== undefined && { bearerToken: src.bearerToken }),
    ...(src.proxy !== undefined && { proxy: src.proxy }),
    ...(src.proxyCredentials !== undefined && { proxyCredentials: src.proxyCredentials }),
    ...(src.s3 !== undefined && { s3: src.s3 }),
    ...(src.wis2 !== undefined && { wis2: src.wis2 }),
    log,
  };
}

/** What sources of one process share: the per-host connection budget (`maxConnections`). */
export interface SharedSourceState {
  hostBudget: HostBudget;
  /** The process's private state directory (WIS2 journals). */
  stateDir?: string;
}

export function openSource(src: SourceSettings, log: Logger, shared: SharedSourceState): Source {
  const factory = factories.get(src.protocol);
  // A programming error, not a user's: the composition root loads the kinds of every config it opens.
  if (!factory) throw new Error(`source kind ${src.protocol} was not loaded (call loadSourceKinds first)`);
  const opts = { ...connectOptions(src, log), ...(shared.stateDir !== undefined && { stateDir: shared.stateDir }) };
  return factory(opts, shared);
}
