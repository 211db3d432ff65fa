/** Terminal output helpers for commands: the only place that writes to stdout besides the logger. */

import { ConfigError, PollerError } from '../errors.js';
import { formatDurationMs } from '../util/duration.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function printLine(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** A plain aligned table; good enough for a terminal and for grep. */
export function printTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): void {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  for (const r of cells)
    printLine(
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    );
}

export function ago(ms: number | null, nowMs = Date.now()): string {
  if (ms === null) return 'never';
  const d = nowMs - ms;
  return d >= 0 ? `${formatDurationMs(d)} ago` : `in ${formatDurationMs(-d)}`;
}

export function iso(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace('.000Z', 'Z');
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** Report an error that ends a command: one line per problem on stderr; returns the exit code. */
export function reportFatal(err: unknown): number {
  if (err instanceof ConfigError) {
    for (const issue of err.issues) process.stderr.write(`poller: ${issue}\n`);
    return 2;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`poller: ${err.message}\n`);
    return 2;
  }
  const msg = err instanceof Error ? err.message : String(err);
  const code = err instanceof PollerError ? ` [${err.code}]` : '';
  process.stderr.write(`poller: ${msg.split('\n')[0]}${code}\n`);
  return 1;
}

/** Wrong use of a command (exit 2). */
export class UsageError extends Error {}
