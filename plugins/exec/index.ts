/**
 * exec: run a command for each file, like an LDM pqact EXEC (or PIPE with `stdin: file`).
 * The command is an argv array run without a shell unless `shell: true`; the exit code decides
 * success; stdout and stderr go to the log; a hang is killed with its whole process group.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createReadStream, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { definePlugin, durationMs, PermanentError, type PluginFile, TransientError } from '../../src/plugins/api.js';

const duration = durationMs();

const options = z
  .strictObject({
    /**
     * argv, placeholders `{path}` (landed file), `{remotePath}`, `{source}`, `{name}` (base name)
     * substituted in each element. With `shell: true`, one string run by `/bin/sh -c`.
     */
    command: z.union([z.string().min(1), z.array(z.string()).min(1)]),
    /** Run through `/bin/sh -c`; placeholders are then inserted single-quoted. @default false */
    shell: z.boolean().default(false),
    /** Kill the command (and its children) after this long. Unset: only the run's own timeout. */
    timeout: duration.optional(),
    /** Time between SIGTERM and SIGKILL when killing. @default 5s */
    killGrace: duration.default(5000),
    /** Extra environment variables; values take placeholders too. */
    env: z.record(z.string(), z.string()).default({}),
    /** Working directory. @default the plugin's state directory */
    cwd: z.string().optional(),
    /** `file` feeds the landed file to stdin (pqact PIPE). @default none */
    stdin: z.enum(['none', 'file']).default('none'),
    /** Exit codes that mean "this file will never work": the file fails without retries. */
    permanentExitCodes: z.array(z.number().int()).default([]),
    /** Output lines logged per stream and run; the rest is counted. @default 50 */
    maxLogLines: z.number().int().nonnegative().default(50),
  })
  .superRefine((o, ctx) => {
    if (!o.shell && typeof o.command === 'string') {
      ctx.addIssue({
        code: 'custom',
        path: ['command'],
        message: 'give an argv array (["gzip", "-k", "{path}"]) or set shell: true',
      });
    }
    if (o.shell && Array.isArray(o.command) && o.command.length !== 1) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: 'with shell: true give one command string' });
    }
  });

export type ExecOptions = z.output<typeof options>;

/** A non-zero exit: carries the code and the end of stderr for the ledger and the log. */
export class ExecExitError extends TransientError {
  readonly exitCode: number;
  readonly stderrTail: readonly string[];
  constructor(program: string, exitCode: number, stderrTail: readonly string[]) {
    super('EXEC_EXIT_NONZERO', exitMessage(program, exitCode, stderrTail));
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

/** A non-zero exit listed in `permanentExitCodes`. */
export class ExecPermanentExitError extends PermanentError {
  readonly exitCode: number;
  readonly stderrTail: readonly string[];
  constructor(program: string, exitCode: number, stderrTail: readonly string[]) {
    super('EXEC_EXIT_PERMANENT', exitMessage(program, exitCode, stderrTail));
    this.exitCode = exitCode;
    this.stderrTail = stderrTail;
  }
}

// Lines of stderr kept for the error message; the log has the rest.
const STDERR_TAIL_LINES = 5;
// One output line is cut here: a binary dump on stdout must not become a 100 MB log line.
const MAX_LINE_CHARS = 2000;
// After the command exits, its output pipes normally close at once; if a background child
// still holds them open after this long, the group is killed so the run can finish.
const PIPE_DRAIN_MS = 2000;

export default definePlugin({
  name: 'exec',
  options,
  // The command already runs in a process of its own, killed with its group at the timeout;
  // the plugin only waits for it.
  isolate: 'none',
  async process(file, ctx) {
    const o = ctx.options;
    const values = placeholderValues(file);
    const argv = o.shell
      ? ['/bin/sh', '-c', substitute(typeof o.command === 'string' ? o.command : (o.command[0] ?? ''), values, true)]
      : (o.command as string[]).map((arg) => substitute(arg, values, false));
    const [program = '', ...args] = argv;
    const shown = o.shell ? 'sh' : path.basename(program);

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      POLLER_PATH: file.localPath,
      POLLER_REMOTE_PATH: file.remotePath,
      POLLER_SOURCE: file.source,
      POLLER_NAME: values.name,
      POLLER_ATTEMPT: String(ctx.attempt),
    };
    for (const [key, value] of Object.entries(o.env)) env[key] = substitute(value, values, false);

    const cwd = o.cwd ?? ctx.stateDir;
    // spawn reports a missing cwd as ENOENT, indistinguishable from a missing program.
    const cwdOk = await stat(cwd).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!cwdOk) throw new PermanentError('EXEC_BAD_CWD', `cwd "${cwd}" is not a directory; fix the cwd option`);

    ctx.signal.throwIfAborted();
    const started = performance.now();
    const child = spawn(program, args, {
      cwd,
      env,
      // Its own process group, so a kill reaches everything the command started.
      detached: true,
      stdio: [o.stdin === 'file' ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });

    const stderrTail: string[] = [];
    const logged = { stdout: 0, stderr: 0 };
    const dropped = { stdout: 0, stderr: 0 };
    const onLine = (stream: 'stdout' | 'stderr', line: string) => {
      if (stream === 'stderr') {
        stderrTail.push(line);
        if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
      }
      if (logged[stream] < o.maxLogLines) {
        logged[stream]++;
        const entry = { event: 'exec.output', stream, line };
        if (stream === 'stderr') ctx.log.warn(entry, 'command output');
        else ctx.log.info(entry, 'command output');
      } else {
        dropped[stream]++;
      }
    };
    const outputDone = Promise.all([
      readLines(child.stdout, (l) => onLine('stdout', l)),
      readLines(child.stderr, (l) => onLine('stderr', l)),
    ]);

    let input: ReadStream | undefined;
    if (o.stdin === 'file' && child.stdin !== null) {
      input = createReadStream(file.localPath);
      // A command that stops reading early (head -c) closes its stdin: that is its choice.
      child.stdin.on('error', () => {});
      input.on('error', (err) => {
        ctx.log.warn({ err, event: 'exec.stdin_failed' }, 'could not feed the file to stdin');
        child.stdin?.destroy();
      });
      input.pipe(child.stdin);
    }

    const timeoutSignal = o.timeout === undefined ? undefined : AbortSignal.timeout(o.timeout);
    const stop = timeoutSignal === undefined ? ctx.signal : AbortSignal.any([ctx.signal, timeoutSignal]);
    const killer = groupKiller(child, o.killGrace);
    const onStop = () => killer.kill(ctx.signal.aborted ? 'aborted' : 'timeout');
    stop.addEventListener('abort', onStop, { once: true });

    let exit: { code: number | null; signal: NodeJS.Signals | null };
    try {
      exit = await waitForExit(child, shown);
      await drainOrKill(outputDone, killer, child);
    } finally {
      stop.removeEventListener('abort', onStop);
      killer.dispose();
      // A command that exits without reading all of stdin leaves the file open otherwise.
      input?.destroy();
    }
    const durationMs = Math.round(performance.now() - started);

    if (dropped.stdout + dropped.stderr > 0) {
      ctx.log.warn({ event: 'exec.output_truncated', droppedLines: dropped }, 'command output cut from the log');
    }
    ctx.log.info(
      { event: 'exec.finished', exitCode: exit.code, exitSignal: exit.signal, durationMs },
      'command finished',
    );

    if (killer.reason === 'aborted') {
      throw new TransientError('EXEC_ABORTED', `command "${shown}" stopped: the run was aborted`, {
        cause: ctx.signal.reason,
      });
    }
    if (killer.reason === 'timeout') {
      throw new TransientError(
        'EXEC_TIMEOUT',
        `command "${shown}" did not finish within ${o.timeout} ms and was killed; raise timeout or fix the command`,
      );
    }
    if (exit.code === null) {
      throw new TransientError('EXEC_KILLED', `command "${shown}" was killed by ${exit.signal ?? 'a signal'}`);
    }
    if (exit.code !== 0) {
      if (o.permanentExitCodes.includes(exit.code)) throw new ExecPermanentExitError(shown, exit.code, stderrTail);
      throw new ExecExitError(shown, exit.code, stderrTail);
    }
  },
});

interface Placeholders {
  path: string;
  remotePath: string;
  source: string;
  name: string;
}

function placeholderValues(file: PluginFile): Placeholders {
  return {
    path: file.localPath,
    remotePath: file.remotePath,
    source: file.source,
    name: path.posix.basename(file.remotePath),
  };
}

/** Replace the known placeholders; other braces (awk's `{print $1}`) are left alone. */
export function substitute(template: string, values: Placeholders, shellQuote: boolean): string {
  return template.replace(/\{(path|remotePath|source|name)\}/g, (_m, key: keyof Placeholders) =>
    shellQuote ? quoteForShell(values[key]) : values[key],
  );
}

/** Single-quote for /bin/sh: a remote file name must never be read as shell syntax. */
export function quoteForShell(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function exitMessage(program: string, exitCode: number, stderrTail: readonly string[]): string {
  const tail = stderrTail.map((l) => l.slice(0, 200)).join(' | ');
  return `command "${program}" exited with code ${exitCode}${tail === '' ? '' : `; stderr: ${tail}`}`;
}

function waitForExit(
  child: ChildProcess,
  shown: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(
          new PermanentError('EXEC_NOT_FOUND', `command "${shown}" not found; check command[0] and PATH`, {
            cause: err,
          }),
        );
      } else if (err.code === 'EACCES') {
        reject(new PermanentError('EXEC_NOT_EXECUTABLE', `command "${shown}" is not executable`, { cause: err }));
      } else {
        reject(
          new TransientError('EXEC_SPAWN_FAILED', `command "${shown}" could not start (${err.code})`, { cause: err }),
        );
      }
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** SIGTERM to the whole process group, then SIGKILL after the grace if anything is left. */
function groupKiller(child: ChildProcess, graceMs: number) {
  let timer: NodeJS.Timeout | undefined;
  let reason: 'aborted' | 'timeout' | undefined;
  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  };
  return {
    /** Why the group was killed; undefined when the command ended on its own. */
    get reason() {
      return reason;
    },
    kill(why: 'aborted' | 'timeout') {
      if (timer !== undefined) return;
      reason = why;
      signalGroup('SIGTERM');
      timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
    },
    killNow() {
      signalGroup('SIGKILL');
    },
    dispose() {
      if (timer === undefined) return;
      clearTimeout(timer);
      // The command has exited; whatever it started that ignored SIGTERM does not outlive the run.
      signalGroup('SIGKILL');
    },
  };
}

async function drainOrKill(
  outputDone: Promise<unknown>,
  killer: ReturnType<typeof groupKiller>,
  child: ChildProcess,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const drained = await Promise.race([
    outputDone.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), PIPE_DRAIN_MS);
    }),
  ]);
  clearTimeout(timer);
  if (!drained) {
    killer.killNow();
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
}

/** Split a stream into lines, cutting each at MAX_LINE_CHARS so memory stays bounded. */
async function readLines(stream: Readable | null, onLine: (line: string) => void): Promise<void> {
  if (stream === null) return;
  stream.setEncoding('utf8');
  let pending = '';
  let skipping = false;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      let text = pending + chunk;
      pending = '';
      let nl = text.indexOf('\n');
      while (nl !== -1) {
        if (!skipping) onLine(text.slice(0, nl).replace(/\r$/, ''));
        skipping = false;
        text = text.slice(nl + 1);
        nl = text.indexOf('\n');
      }
      if (text.length > MAX_LINE_CHARS) {
        if (!skipping) onLine(`${text.slice(0, MAX_LINE_CHARS)}…`);
        skipping = true;
      } else if (!skipping) {
        pending = text;
      }
    }
  } catch {
    // Destroyed after a kill: what was read is what there is.
  }
  if (pending !== '') onLine(pending);
}
