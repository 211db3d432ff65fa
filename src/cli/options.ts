/** Options every command shares, and small parsers for flag values. */
import type { LevelWithSilent } from 'pino';
import type { Argv } from 'yargs';
import { UsageError } from './output.js';

export interface CommonArgs {
  config: string;
  json: boolean;
  logLevel?: LevelWithSilent;
}

export const DEFAULT_CONFIG = process.env['POLLER_CONFIG'] ?? 'poller.yaml';

export function commonOptions<T>(y: Argv<T>) {
  return y
    .option('config', {
      alias: 'c',
      type: 'string',
      default: DEFAULT_CONFIG,
      describe: 'Config file (YAML or JSON); env POLLER_CONFIG',
    })
    .option('json', { type: 'boolean', default: false, describe: 'Machine-readable output' })
    .option('log-level', {
      type: 'string',
      choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      describe: 'Override the configured log level',
    });
}

/** `2026-11-01T00:00Z`, `2026-11-01`, or a duration back from now (`6h`). */
export function parseTime(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return Date.now() - Number(rel[1]) * unit;
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new UsageError(`${flag} ${value}: not a time; write e.g. 2026-11-01T00:00Z or 6h`);
  return t;
}
