/**
 * `poller bufr dump|summary` without the argument parser: a quick look at one radar volume is
 * the command people run in a loop and in scripts, and loading yargs costs about as much CPU as
 * decoding a volume. Only plain argument lists take this path (files, `--json`, `--[no-]nested`,
 * `--tables DIR`); anything else (help, an unknown or misspelt option, `--`) goes to the full
 * parser, so its errors and help stay the parser's.
 */
import { runBufrDump, runBufrSummary, withStdout } from './bufr.js';

interface FastArgs {
  sub: 'dump' | 'summary';
  files: string[];
  json: boolean;
  nested: boolean;
  tables?: string;
}

/** The parsed arguments when the argv is a plain `bufr dump|summary` call, else undefined. */
export function parseFastBufrArgs(argv: readonly string[]): FastArgs | undefined {
  const [cmd, sub, ...rest] = argv;
  if (cmd !== 'bufr' || (sub !== 'dump' && sub !== 'summary')) return undefined;
  const out: FastArgs = { sub, files: [], json: false, nested: true };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as string;
    if (!a.startsWith('-') || a === '-') {
      out.files.push(a);
    } else if (sub === 'dump' && a === '--json') {
      out.json = true;
    } else if (sub === 'dump' && (a === '--nested' || a === '--no-nested')) {
      out.nested = a === '--nested';
    } else if (a === '--tables' && i + 1 < rest.length && !(rest[i + 1] as string).startsWith('-')) {
      out.tables = rest[++i] as string;
    } else if (a.startsWith('--tables=') && a.length > '--tables='.length) {
      out.tables = a.slice('--tables='.length);
    } else {
      return undefined; // the parser answers it, with its own message
    }
  }
  return out.files.length > 0 ? out : undefined;
}

/** Runs a plain `bufr dump|summary` and returns true, or false when the full parser must. */
export async function runFastBufr(argv: readonly string[]): Promise<boolean> {
  const args = parseFastBufrArgs(argv);
  if (!args) return false;
  const tables = args.tables === undefined ? {} : { tables: args.tables };
  process.exitCode = await withStdout((out) =>
    args.sub === 'dump'
      ? runBufrDump(args.files, { json: args.json, nested: args.nested, ...tables }, out)
      : runBufrSummary(args.files, tables, out),
  );
  return true;
}
