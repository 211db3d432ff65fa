/** One poll cycle of a config written for an http(s):// or s3:// source, in process (like run-once). */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cycleStartDirs, openApp, prepareSource } from '../../src/cli/app.js';
import { type CycleSummary, runCycle } from '../../src/engine/cycle.js';
import { toleratingMissingDirs } from '../../src/sources/date-template.js';

export async function writeWebConfig(dir: string, source: Record<string, unknown>): Promise<string> {
  const configPath = path.join(dir, 'poller.yaml');
  const config = {
    landing: './landing',
    ledger: './ledger.db',
    retryBase: '50ms',
    retryMax: '200ms',
    log: { level: 'warn' },
    sources: [{ name: 'web', include: ['**/*.bufr'], settleDelay: '100ms', ...source }],
  };
  await writeFile(configPath, JSON.stringify(config, null, 2));
  return configPath;
}

/** A new app each time: nothing survives in memory between cycles, as between two run-once. */
export async function webCycle(configPath: string): Promise<CycleSummary> {
  const app = await openApp({ configPath, logTo: 'stderr', logLevel: 'silent' });
  try {
    const raw = app.config.sources[0]!;
    const src = prepareSource(raw);
    const startDirs = cycleStartDirs(src, {});
    const source = app.source(raw);
    return await runCycle(src, startDirs ? toleratingMissingDirs(source, startDirs) : source, await app.cycleDeps(), {
      signal: app.shutdown.signal,
      settleWithinCycle: true,
      ...(startDirs && { startDirs }),
    });
  } finally {
    await app.close();
  }
}
