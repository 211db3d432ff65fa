/**
 * Run a plugin's hooks outside the engine: options validated by the plugin's own schema, a
 * logger whose lines are collected as objects, a per-test state directory, an AbortController.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { z } from 'zod';
import { createLogger } from '../../src/observe/logger.js';
import type { EmittedOutput, Plugin, PluginContext, PluginFile } from '../../src/plugins/api.js';

export interface PluginHarness<Schema extends z.ZodType> {
  /** Per-test tmp dir: `state/` is the plugin's stateDir, `landing/` holds landed files. */
  dir: string;
  lines: Record<string, unknown>[];
  emitted: EmittedOutput[];
  controller: AbortController;
  ctx: PluginContext<z.output<Schema>>;
  /** Write a landed file and describe it as the engine would. */
  land(remotePath: string, content: string | Buffer, source?: string): Promise<PluginFile>;
  cleanup(): Promise<void>;
}

export async function pluginHarness<Schema extends z.ZodType>(
  plugin: Plugin<Schema>,
  rawOptions: unknown,
  attempt = 1,
): Promise<PluginHarness<Schema>> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `poller-plugin-${plugin.name}-`));
  const stateDir = path.join(dir, 'state');
  await mkdir(stateDir, { recursive: true });
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line));
      callback();
    },
  });
  const log = createLogger({ level: 'debug', destination }).child({ plugin: plugin.name });
  const options = (plugin.options === undefined ? rawOptions : plugin.options.parse(rawOptions)) as z.output<Schema>;
  const controller = new AbortController();
  const emitted: EmittedOutput[] = [];
  const ctx: PluginContext<z.output<Schema>> = {
    log,
    options,
    stateDir,
    signal: controller.signal,
    attempt,
    emit: (output) => {
      emitted.push(output);
    },
  };
  return {
    dir,
    lines,
    emitted,
    controller,
    ctx,
    async land(remotePath, content, source = 'radar-test') {
      const localPath = path.join(dir, 'landing', source, ...remotePath.split('/'));
      await mkdir(path.dirname(localPath), { recursive: true });
      await writeFile(localPath, content);
      return {
        localPath,
        remotePath,
        source,
        sizeBytes: Buffer.byteLength(content),
        mtimeMs: Date.parse('2026-11-23T05:15:00Z'),
        attempt,
      };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Poll `check` until it returns true; bounded by `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, what = 'condition' }: { timeoutMs?: number; what?: string } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** True while a process with this pid runs. A zombie counts as gone: in a container PID 1 may never reap it. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
