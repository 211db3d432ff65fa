/**
 * The root logger: pino JSON, one object per line on stdout (journald collects it), with
 * secrets redacted at any depth a pino redact path can express.
 */
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/** Field names whose values never reach a log line, wherever they appear in a logged object. */
export const SECRET_FIELDS: readonly string[] = ['password', 'passphrase', 'privateKey', 'key', 'secret', 'token'];

/**
 * pino redact paths have no "any depth" wildcard; a path with N leading `*` segments matches
 * exactly N levels down. Four levels cover `{ err: { cause: { options: { password } } } }`
 * while keeping the wildcard cost (pino docs/redaction.md "Overhead") small.
 */
const REDACT_DEPTH = 4;

/** The redact paths used by {@link createLogger}: each secret field at depth 0 to REDACT_DEPTH. */
export function redactPaths(fields: readonly string[] = SECRET_FIELDS, depth = REDACT_DEPTH): string[] {
  const paths: string[] = [];
  for (let level = 0; level <= depth; level++) {
    const prefix = '*.'.repeat(level);
    for (const field of fields) paths.push(`${prefix}${field}`);
  }
  return paths;
}

export interface CreateLoggerOptions {
  /** pino level name: `trace` … `fatal`, or `silent`. */
  level: LevelWithSilent;
  /** Where lines go. @default stdout */
  destination?: DestinationStream;
}

/**
 * Build the root logger. Modules receive children of it (`log.child({ source })`), never a
 * logger of their own.
 *
 * @example
 * const log = createLogger({ level: 'info' });
 * log.info({ event: 'source.polled', source: 'radar-north', files: 12 }, 'polled');
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const settings = {
    level: options.level,
    redact: { paths: redactPaths(), censor: '[Redacted]' },
    // errWithCause keeps the chain of `cause` as nested objects instead of flattening it to text.
    serializers: { err: pino.stdSerializers.errWithCause },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination === undefined ? pino(settings) : pino(settings, options.destination);
}
