/** Opens the Source for a configured source, by URL scheme. */
import type { Logger } from 'pino';
import type { SourceConfig } from '../config/load.js';
import { createFtpSource } from './ftp/ftp-source.js';
import type { HostBudget } from './ftp/host-budget.js';
import { createHttpSource } from './http/http-source.js';
import { createLocalSource } from './local/local-source.js';
import { createS3Source } from './s3/s3-source.js';
import { createSftpSource } from './sftp/sftp-source.js';
import type { Source, SourceConnectOptions } from './source.js';
import { createWis2Source } from './wis2/wis2-source.js';

export function connectOptions(src: SourceConfig, log: Logger): SourceConnectOptions {
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

export function openSource(src: SourceConfig, log: Logger, shared: SharedSourceState): Source {
  const opts = { ...connectOptions(src, log), ...(shared.stateDir !== undefined && { stateDir: shared.stateDir }) };
  switch (src.protocol) {
    case 'ftp':
    case 'ftps':
      return createFtpSource({ ...opts, hostBudget: shared.hostBudget });
    case 'sftp':
      return createSftpSource(opts);
    case 'file':
      return createLocalSource(opts);
    case 'http':
    case 'https':
      return createHttpSource(opts);
    case 's3':
      return createS3Source(opts);
    case 'wis2+mqtt':
    case 'wis2+mqtts':
      return createWis2Source(opts);
  }
}
