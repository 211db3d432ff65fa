/**
 * `poller bufr dump|summary|render`: look inside BUFR files with the shipped decoder.
 * Exit codes: 0 ok, 1 a message could not be decoded, 2 usage (bad arguments, unreadable file).
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { type DecodeResult, decodeBufr } from '../../plugins/bufr/decoder/index.js';
import { formatDump, formatSummary, toJsonDocument } from '../../plugins/bufr/output/document.js';
import { renderPpi } from '../../plugins/bufr/render/ppi.js';

/** Where output lines go. */
export type WriteLine = (line: string) => void;

const stdoutLine: WriteLine = (line) => {
  process.stdout.write(`${line}\n`);
};

// `poller bufr dump big.bufr | head` closes the pipe early: that is not an error.
function quietOnClosedPipe(): void {
  process.stdout.once('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

async function load(file: string, tables: string | undefined, write: WriteLine): Promise<DecodeResult | number> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    write(
      `error: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; check the path`,
    );
    return 2;
  }
  try {
    return decodeBufr(bytes, tables === undefined ? {} : { tables });
  } catch (err) {
    write(`error: cannot load local tables from ${tables}: ${(err as Error).message}`);
    return 2;
  }
}

function exitCodeOf(result: DecodeResult): number {
  return result.messages.length > 0 && result.messages.every((m) => m.ok) ? 0 : 1;
}

/** `poller bufr dump FILE [--json] [--tables DIR]`. */
export async function runBufrDump(
  file: string,
  opts: { json?: boolean; tables?: string },
  write: WriteLine = stdoutLine,
): Promise<number> {
  const result = await load(file, opts.tables, write);
  if (typeof result === 'number') return result;
  if (result.messages.length === 0) {
    write(`error: no BUFR message found in ${file}`);
    return 1;
  }
  if (opts.json) write(JSON.stringify(toJsonDocument(result, file, { nested: true }), null, 1));
  else formatDump(result, write);
  return exitCodeOf(result);
}

/** `poller bufr summary FILE [--tables DIR]`. */
export async function runBufrSummary(
  file: string,
  opts: { tables?: string },
  write: WriteLine = stdoutLine,
): Promise<number> {
  const result = await load(file, opts.tables, write);
  if (typeof result === 'number') return result;
  formatSummary(result, write);
  return exitCodeOf(result);
}

/** `poller bufr render FILE --sweep N --out sweep.png [--size PX] [--tables DIR]`. */
export async function runBufrRender(
  file: string,
  opts: { sweep: number; out: string; sizePx?: number; tables?: string },
  write: WriteLine = stdoutLine,
): Promise<number> {
  if (!Number.isInteger(opts.sweep) || opts.sweep < 0) {
    write(`error: --sweep must be a sweep number (0, 1, ...), got ${opts.sweep}`);
    return 2;
  }
  const result = await load(file, opts.tables, write);
  if (typeof result === 'number') return result;
  const sweeps = result.messages.flatMap((m) => (m.ok && m.radar ? m.radar.sweeps : []));
  if (sweeps.length === 0) {
    const failed = result.messages.find((m) => !m.ok);
    write(`error: ${file} holds no radar sweep${failed && !failed.ok ? ` (${failed.error.message})` : ''}`);
    return 1;
  }
  const s = sweeps[opts.sweep];
  if (!s) {
    write(`error: --sweep ${opts.sweep} is out of range; ${file} has sweeps 0 to ${sweeps.length - 1}`);
    return 2;
  }
  await writeFile(opts.out, renderPpi(s, opts.sizePx === undefined ? {} : { sizePx: opts.sizePx }));
  write(`wrote ${opts.out}: ${s.quantity} sweep ${opts.sweep}, elevation ${s.elevationDeg} deg, ${s.rays}x${s.bins}`);
  return 0;
}

interface FileArgs {
  file: string;
  tables?: string;
}

const withFile = <T>(y: Argv<T>) =>
  y
    .positional('file', { type: 'string', demandOption: true, describe: 'BUFR file' })
    .option('tables', { type: 'string', describe: 'directory of local tables (ecCodes or OPERA CSV format)' });

/** The `bufr` command with its subcommands, for the CLI entry. */
export const bufrCommand: CommandModule = {
  command: 'bufr <command>',
  describe: 'Decode BUFR files: dump values, summarise, render radar quicklooks',
  builder: (yargs: Argv) =>
    yargs
      .command(
        'dump <file>',
        'Print every decoded value',
        (y) => withFile(y).option('json', { type: 'boolean', default: false, describe: 'print a JSON document' }),
        async (argv: ArgumentsCamelCase<FileArgs & { json: boolean }>) => {
          quietOnClosedPipe();
          process.exitCode = await runBufrDump(argv.file, {
            json: argv.json,
            ...(argv.tables ? { tables: argv.tables } : {}),
          });
        },
      )
      .command(
        'summary <file>',
        'Print one line per message and the radar sweeps',
        (y) => withFile(y),
        async (argv: ArgumentsCamelCase<FileArgs>) => {
          quietOnClosedPipe();
          process.exitCode = await runBufrSummary(argv.file, argv.tables ? { tables: argv.tables } : {});
        },
      )
      .command(
        'render <file>',
        'Render one radar sweep as a PPI quicklook PNG',
        (y) =>
          withFile(y)
            .option('sweep', { type: 'number', demandOption: true, describe: 'sweep number, from 0' })
            .option('out', { type: 'string', demandOption: true, describe: 'PNG file to write' })
            .option('size', { type: 'number', describe: 'image size in pixels (default 600)' }),
        async (argv: ArgumentsCamelCase<FileArgs & { sweep: number; out: string; size?: number }>) => {
          process.exitCode = await runBufrRender(argv.file, {
            sweep: argv.sweep,
            out: argv.out,
            ...(argv.size === undefined ? {} : { sizePx: argv.size }),
            ...(argv.tables ? { tables: argv.tables } : {}),
          });
        },
      )
      .demandCommand(1, 'choose a subcommand: dump, summary or render')
      .strict(),
  handler: () => {},
};
