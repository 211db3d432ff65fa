import type { Logger } from 'pino';
import type { SourceConnectOptions } from '../../src/sources/source.js';

/** Connect options of an http:// (or s3) source against a test server on 127.0.0.1. */
export function webSourceOptions(
  port: number,
  log: Logger,
  over: Partial<SourceConnectOptions> = {},
): SourceConnectOptions {
  return {
    name: 'web',
    protocol: 'http',
    host: '127.0.0.1',
    port,
    user: '',
    rootPath: '/',
    tls: { mode: 'none', insecure: false },
    timezone: 'UTC',
    maxConnections: 4,
    connectTimeoutMs: 5_000,
    dataTimeoutMs: 10_000,
    log,
    ...over,
  };
}
