/**
 * Case `plugins`: a catch-up of the demo's radar feed from a local source with the `bufr` plugin
 * on every file, the plugin in worker threads (`isolate: worker`, its default) against in the
 * poller's thread (`isolate: none`), and without plugins as the transfer baseline. Interleaved
 * A B C per repetition, `run-once` under `/usr/bin/time -v`. Reported: files/s of the whole run,
 * CPU seconds, and the transfer rate while plugins run (files landed per second between the first
 * and the last `file.fetched` line). Goal: transfers slow by no more than 10 % with the plugin.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeDemoFeed } from '../../src/demo/feed.js';
import { logTimeMs, POLLER_BIN, pollerLogLines } from '../lib/poller-cli.js';
import { fmt, median } from '../lib/stats.js';
import { missingTools, runTimed } from '../lib/timed.js';

type Mode = 'baseline' | 'none' | 'worker';
const MODES: readonly Mode[] = ['baseline', 'none', 'worker'];

export interface PluginIsolationResult {
  case: 'plugins';
  files: number;
  reps: number;
  byMode: Record<Mode, { wallS: number[]; cpuS: number[]; filesPerS: number[]; transferFilesPerS: number[] }>;
  transferSlowdownPct: number;
}

export async function benchPluginIsolation(opts: {
  reps: number;
  scale: number;
}): Promise<PluginIsolationResult | undefined> {
  if (missingTools(['/usr/bin/time']).length > 0) {
    console.log('plugins: skipped: needs /usr/bin/time');
    return undefined;
  }
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'poller-bench-plugins-'));
  try {
    const feedDir = path.join(scratch, 'feed');
    const steps = Math.max(2, Math.round(24 * opts.scale));
    const feed = await writeDemoFeed(feedDir, { steps, endMs: Date.now() - 3_600_000 });
    // Landed files: the demo feed also writes files outside the include globs.
    const files = 0;
    console.log(`plugins: ${feed.length} demo feed files (${steps} steps), local source, run-once`);
    const byMode = Object.fromEntries(
      MODES.map((m) => [
        m,
        { wallS: [] as number[], cpuS: [] as number[], filesPerS: [] as number[], transferFilesPerS: [] as number[] },
      ]),
    ) as PluginIsolationResult['byMode'];
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const mode of MODES) {
        const dir = path.join(scratch, `run-${rep}-${mode}`);
        await mkdir(dir, { recursive: true });
        const config = {
          landing: path.join(dir, 'landing'),
          ledger: path.join(dir, 'ledger.db'),
          log: { level: 'info' },
          sources: [
            {
              name: 'bench',
              url: pathToFileURL(feedDir).href,
              include: ['**/*.bufr', '**/*.BUFR'],
              maxFilesPerPoll: 1_000_000,
            },
          ],
          plugins: mode === 'baseline' ? [] : [{ use: 'bufr', options: { out: path.join(dir, 'out') }, isolate: mode }],
        };
        const configPath = path.join(dir, 'poller.json');
        await writeFile(configPath, JSON.stringify(config));
        const run = await runTimed({
          command: process.execPath,
          args: [POLLER_BIN, 'run-once', '--json', '--config', configPath],
        });
        if (run.exitCode !== 0)
          throw new Error(`plugins ${mode}: run-once exited ${run.exitCode}: ${run.stderr.slice(-500)}`);
        const fetched = pollerLogLines(run.stderr)
          .filter((l) => l.event === 'file.fetched')
          .map(logTimeMs);
        if (fetched.length !== files)
          throw new Error(`plugins ${mode}: ${fetched.length} files fetched, expected ${files}`);
        const spanS = Math.max(1e-3, (Math.max(...fetched) - Math.min(...fetched)) / 1000);
        const m = byMode[mode];
        m.wallS.push(run.wallMs / 1000);
        m.cpuS.push(run.cpuS);
        m.filesPerS.push(files / (run.wallMs / 1000));
        m.transferFilesPerS.push(files / spanS);
        await rm(dir, { recursive: true, force: true });
      }
    }
    const base = median(byMode.baseline.transferFilesPerS);
    const slowdown = (1 - median(byMode.worker.transferFilesPerS) / base) * 100;
    for (const mode of MODES) {
      const m = byMode[mode];
      console.log(
        `plugins ${mode.padEnd(8)}: ${fmt(median(m.filesPerS), 1)} files/s overall, wall ${fmt(median(m.wallS), 2)} s, CPU ${fmt(median(m.cpuS), 2)} s, transfers ${fmt(median(m.transferFilesPerS), 1)} files/s (medians of ${opts.reps})`,
      );
    }
    console.log(
      `plugins: transfers with bufr in workers are ${fmt(slowdown, 1)} % slower than without plugins (goal <= 10 %)`,
    );
    return { case: 'plugins', files, reps: opts.reps, byMode, transferSlowdownPct: slowdown };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
