import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import pino, { type Logger } from 'pino';
import type { DownloadOptions, Source, SourceConnectOptions } from '../../src/sources/source.js';

/** One parsed pino line. */
export interface LogLine {
  level?: number;
  event?: string;
  msg?: string;
  [key: string]: unknown;
}

/** Parsed log lines of a test logger. */
export interface CollectedLog {
  readonly log: Logger;
  readonly lines: LogLine[];
}

/** A pino logger whose lines are kept, parsed, for assertions. */
export function collectingLogger(): CollectedLog {
  const lines: LogLine[] = [];
  const log = pino(
    { level: 'debug' },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  return { log, lines };
}

/** SourceConnectOptions for an SFTP server on 127.0.0.1 with test-friendly timeouts. */
export function sftpConnectOptions(
  over: Partial<SourceConnectOptions> & Pick<SourceConnectOptions, 'port' | 'user' | 'rootPath' | 'log'>,
): SourceConnectOptions {
  return {
    name: 'test-sftp',
    protocol: 'sftp',
    host: '127.0.0.1',
    tls: { mode: 'none', insecure: false },
    timezone: 'UTC',
    maxConnections: 2,
    connectTimeoutMs: 10_000,
    dataTimeoutMs: 10_000,
    ...over,
  };
}

/** Downloads into a file (appending when resuming) and waits until it is flushed and closed. */
export async function downloadToFile(
  source: Source,
  remote: string,
  file: string,
  opts: Omit<DownloadOptions, 'signal'> & { signal?: AbortSignal },
): Promise<void> {
  const out = createWriteStream(file, { flags: opts.offsetBytes > 0 ? 'a' : 'w' });
  try {
    await source.download(remote, out, { signal: new AbortController().signal, ...opts });
  } finally {
    out.end();
    await finished(out).catch(() => {});
  }
}
