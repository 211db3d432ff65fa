/**
 * `poller bufr dump|summary|render`: look inside BUFR files with the shipped decoder.
 * `dump` and `summary` take many files (and directories, read recursively) in one process: one
 * result per file, a file that fails gives a one-line error naming it and the others go on.
 * Exit codes: 0 ok, 1 a message could not be decoded, 2 usage (bad arguments, unreadable file);
 * with several files, the worst of them.
 */
import { once } from 'node:events';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { type DecodeResult, decodeBufr } from '../../plugins/bufr/decoder/index.js';
import { type LocalTable, loadLocalTables } from '../../plugins/bufr/decoder/tables.js';
import { dumpLines, formatSummary, jsonChunks, toJsonDocument } from '../../plugins/bufr/output/document.js';
import { renderPpi } from '../../plugins/bufr/render/ppi.js';

/** Where output lines go. */
export type WriteLine = (line: string) => void;

/** Where output text goes (newlines included); a returned promise means "wait before writing more". */
export type WriteText = (text: string) => unknown;

async function put(out: WriteText, text: string): Promise<void> {
  const p = out(text);
  if (p instanceof Promise) await p;
}

const stdoutText: WriteText = (text) => process.stdout.write(text);

const stdoutLine: WriteLine = (line) => {
  process.stdout.write(`${line}\n`);
};

// Small writes are batched; a full stream is waited for, so a slow reader bounds our memory.
const FLUSH_AT_CHARS = 64 * 1024;

/** A batching writer on a stream; `flush` before exiting. */
export function streamText(stream: NodeJS.WritableStream): {
  write: (text: string) => Promise<void> | undefined;
  flush: () => Promise<void>;
} {
  let buf = '';
  const flush = async (): Promise<void> => {
    if (buf === '') return;
    const chunk = buf;
    buf = '';
    if (!stream.write(chunk)) await once(stream, 'drain');
  };
  return {
    write: (text) => {
      buf += text;
      return buf.length >= FLUSH_AT_CHARS ? flush() : undefined;
    },
    flush,
  };
}

const stderrText: WriteText = (text) => process.stderr.write(text);

// `poller bufr dump big.bufr | head` closes the pipe early: that is not an error.
function quietOnClosedPipe(): void {
  process.stdout.once('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const MAX_DIR_DEPTH = 16; // a directory argument is walked this deep, no further
const MAX_FILES = 1_000_000; // and yields at most this many files

/** Files named on the command line, directories expanded (sorted, dot files skipped). */
export async function expandInputs(args: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > MAX_DIR_DEPTH) return;
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      if (out.length >= MAX_FILES) return;
      if (e.name.startsWith('.')) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p, depth + 1);
      else if (e.isFile()) out.push(p);
    }
  };
  for (const a of args) {
    const st = await stat(a).catch(() => undefined);
    if (st?.isDirectory()) await walk(a, 0);
    else out.push(a); // unreadable: reported when it is read
  }
  return out;
}

type Loaded = { ok: true; result: DecodeResult } | { ok: false; code: number; message: string };

async function decodeFile(file: string, tables: readonly LocalTable[] | undefined): Promise<Loaded> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return { ok: false, code: 2, message: `cannot read ${file}: ${why}; check the path` };
  }
  const result = decodeBufr(bytes, tables ? { tables } : {});
  if (result.messages.length === 0) return { ok: false, code: 1, message: `no BUFR message found in ${file}` };
  return { ok: true, result };
}

function loadTables(dir: string | undefined): readonly LocalTable[] | string | undefined {
  if (dir === undefined) return undefined;
  try {
    return loadLocalTables(dir);
  } catch (err) {
    return `cannot load local tables from ${dir}: ${(err as Error).message}; check --tables`;
  }
}

/** Exit code of one decoded file, and its one-line error when a message failed. */
function verdict(file: string, result: DecodeResult): { code: number; error?: string } {
  // A partly decoded message (a table is missing) counts as failed: its values after the stop are not there.
  const failed = result.messages.filter((m) => !m.ok || m.partial);
  const first = failed[0];
  if (!first) return { code: 0 };
  const why = first.ok ? first.partial!.message : first.error.message;
  const how = failed.some((m) => m.ok) ? 'failed or decoded partly' : 'failed';
  return { code: 1, error: `${file}: ${failed.length} of ${result.messages.length} message(s) ${how}; first: ${why}` };
}

interface ManyOptions {
  tables?: string;
}

async function eachFile(
  files: string | readonly string[],
  opts: ManyOptions,
  err: WriteText,
  onFile: (file: string, loaded: Loaded, many: boolean) => Promise<void>,
): Promise<number> {
  const tables = loadTables(opts.tables);
  if (typeof tables === 'string') {
    await put(err, `error: ${tables}\n`);
    return 2;
  }
  const list = await expandInputs(typeof files === 'string' ? [files] : files);
  if (list.length === 0) {
    await put(err, 'error: no files to decode; name BUFR files or directories\n');
    return 2;
  }
  const many = list.length > 1;
  let code = 0;
  for (const file of list) {
    const loaded = await decodeFile(file, tables);
    await onFile(file, loaded, many);
    if (!loaded.ok) {
      await put(err, `error: ${loaded.message}\n`);
      code = Math.max(code, loaded.code);
      continue;
    }
    const v = verdict(file, loaded.result);
    if (v.error) await put(err, `error: ${v.error}\n`);
    code = Math.max(code, v.code);
  }
  return code;
}

/** Pieces of text written in turn, waiting whenever the writer is full. */
async function writeAll(pieces: Iterable<string>, out: WriteText, suffix = ''): Promise<void> {
  for (const p of pieces) await put(out, `${p}${suffix}`);
}

/**
 * `poller bufr dump FILE... [--json] [--tables DIR]`: every value; with `--json`, one JSON document
 * per file, each on one line (JSON lines).
 */
export async function runBufrDump(
  files: string | readonly string[],
  opts: { json?: boolean; tables?: string; nested?: boolean },
  out: WriteText = stdoutText,
  err: WriteText = stderrText,
): Promise<number> {
  return eachFile(files, opts, err, async (file, loaded, many) => {
    if (opts.json) {
      const doc = loaded.ok
        ? toJsonDocument(loaded.result, file, { nested: opts.nested ?? true })
        : { file, error: { message: loaded.message }, messages: [] };
      // Streamed: a file of thousands of messages or subsets never becomes one string.
      await writeAll(jsonChunks(doc), out);
      await put(out, '\n');
      return;
    }
    if (!loaded.ok) return;
    if (many) await put(out, `file ${file}\n`);
    await writeAll(dumpLines(loaded.result), out, '\n');
  });
}

/** `poller bufr summary FILE... [--tables DIR]`. */
export async function runBufrSummary(
  files: string | readonly string[],
  opts: { tables?: string },
  out: WriteText = stdoutText,
  err: WriteText = stderrText,
): Promise<number> {
  const totals = { files: 0, failedFiles: 0, messages: 0, decoded: 0 };
  const code = await eachFile(files, opts, err, async (file, loaded, many) => {
    totals.files++;
    if (!loaded.ok) {
      totals.failedFiles++;
      return;
    }
    const r = loaded.result;
    totals.messages += r.messages.length;
    const ok = r.messages.filter((m) => m.ok && !m.partial).length;
    totals.decoded += ok;
    if (ok < r.messages.length) totals.failedFiles++;
    if (many) await put(out, `file ${file}\n`);
    const lines: string[] = [];
    formatSummary(r, (l) => lines.push(l));
    await writeAll(lines, out, '\n');
  });
  if (totals.files > 1)
    await put(
      out,
      `${totals.files} files, ${totals.files - totals.failedFiles} decoded whole, ${totals.failedFiles} with errors; ` +
        `${totals.messages} message(s), ${totals.decoded} decoded, ${totals.messages - totals.decoded} failed\n`,
    );
  return code;
}

async function load(file: string, tables: string | undefined, write: WriteLine): Promise<DecodeResult | number> {
  const t = loadTables(tables);
  if (typeof t === 'string') {
    write(`error: ${t}`);
    return 2;
  }
  const loaded = await decodeFile(file, t);
  if (!loaded.ok) {
    write(`error: ${loaded.message}`);
    return loaded.code;
  }
  return loaded.result;
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

interface FilesArgs {
  files: string[];
  tables?: string;
}

const TABLES_OPTION = {
  type: 'string',
  describe: 'directory of local tables (ecCodes or OPERA CSV format), added to the shipped ones',
} as const;

const withFile = <T>(y: Argv<T>) =>
  y.positional('file', { type: 'string', demandOption: true, describe: 'BUFR file' }).option('tables', TABLES_OPTION);

const withFiles = <T>(y: Argv<T>) =>
  y
    .positional('files', { type: 'string', array: true, demandOption: true, describe: 'BUFR files or directories' })
    .option('tables', TABLES_OPTION);

/** stdout with batching and back-pressure, flushed when the command is done. */
export async function withStdout(run: (out: WriteText) => Promise<number>): Promise<number> {
  quietOnClosedPipe();
  const s = streamText(process.stdout);
  try {
    return await run(s.write);
  } finally {
    await s.flush();
  }
}

/** The `bufr` command with its subcommands, for the CLI entry. */
export const bufrCommand: CommandModule = {
  command: 'bufr <command>',
  describe: 'Decode BUFR files: dump values, summarise, render radar quicklooks',
  builder: (yargs: Argv) =>
    yargs
      .command(
        'dump <files..>',
        'Print every decoded value of each file',
        (y) =>
          withFiles(y)
            .option('json', {
              type: 'boolean',
              default: false,
              describe: 'print one JSON document per file, one per line',
            })
            .option('nested', {
              type: 'boolean',
              default: true,
              describe: 'with --json, add the nested form of each subset (--no-nested: flat values only)',
            }),
        async (argv: ArgumentsCamelCase<FilesArgs & { json: boolean; nested: boolean }>) => {
          process.exitCode = await withStdout((out) =>
            runBufrDump(
              argv.files,
              { json: argv.json, nested: argv.nested, ...(argv.tables ? { tables: argv.tables } : {}) },
              out,
            ),
          );
        },
      )
      .command(
        'summary <files..>',
        'Print one line per message and the radar sweeps of each file',
        (y) => withFiles(y),
        async (argv: ArgumentsCamelCase<FilesArgs>) => {
          process.exitCode = await withStdout((out) =>
            runBufrSummary(argv.files, argv.tables ? { tables: argv.tables } : {}, out),
          );
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
