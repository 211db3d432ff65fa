/** The example configs and plugin stay valid as the schema and the plugin API evolve. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cycleStartDirs, prepareSource } from '../../src/cli/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { Plugin } from '../../src/plugins/api.js';
import { REPO_ROOT } from '../helpers/engine-env.js';
import { createLogSink } from '../helpers/log-sink.js';

const EXAMPLES = path.join(REPO_ROOT, 'examples');
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('examples', () => {
  it('single-radar.yaml is valid and lists only the dated directories of its maxAge', () => {
    const config = loadConfig(path.join(EXAMPLES, 'single-radar.yaml'), {}, { needSecrets: false });
    const [src] = config.sources;
    expect(src?.schedule).toBe('*/2 * * * *');
    const prepared = prepareSource(src!);
    expect(prepared.rootPath).toBe('/outgoing');
    const now = Date.parse('2026-11-23T05:00:00Z');
    expect(cycleStartDirs(prepared, {}, now)).toEqual(['2026/11/22', '2026/11/23']);
    // --until alone: the maxAge before it.
    expect(cycleStartDirs(prepared, { untilMs: Date.parse('2026-01-01T00:00Z') }, now)).toEqual(['2025/12/31']);
  });

  it('multi-source.yaml is valid: FTPS, SFTP and a local directory', () => {
    const config = loadConfig(path.join(EXAMPLES, 'multi-source.yaml'), {}, { needSecrets: false });
    expect(config.sources.map((s) => s.protocol)).toEqual(['ftps', 'sftp', 'file']);
    expect(config.plugins.map((p) => p.use)).toEqual(['archive', 'exec', './plugins/dist/count-volumes.js']);
    const north = prepareSource(config.sources[0]!);
    expect(north.dateDirTemplates).toEqual(['{YYYY}/{MM}/{DD}']);
  });

  it('s3-to-ftp.yaml is valid: an S3 bucket narrowed by dates, deleted after forwarding, and an HTTPS index', () => {
    const config = loadConfig(
      path.join(EXAMPLES, 's3-to-ftp.yaml'),
      { RADAR_S3_KEY_ID: 'AKID' },
      { needSecrets: false },
    );
    expect(config.sources.map((s) => s.protocol)).toEqual(['s3', 'https']);
    const [bucket] = config.sources;
    expect(bucket?.after).toEqual({ action: 'delete' });
    expect(bucket?.s3).toMatchObject({ bucket: 'radar-outgoing', region: 'eu-west-1', forcePathStyle: true });
    const prepared = prepareSource(bucket!);
    expect(prepared.rootPath).toBe('/volumes');
    expect(cycleStartDirs(prepared, {}, Date.parse('2026-11-23T05:00:00Z'))).toEqual(['2026/11/22', '2026/11/23']);
    expect(config.plugins.map((p) => p.use)).toEqual(['forward']);
  });

  it('radar-volumes.yaml is valid: an RMA key pattern, seven moments, a 3 min quiet time', () => {
    const config = loadConfig(path.join(EXAMPLES, 'radar-volumes.yaml'), {}, { needSecrets: false });
    const volumes = config.sources[0]?.volumes;
    expect(volumes?.pattern.groupBy).toEqual(['radar', 'strategy', 'scan', 'time']);
    expect(volumes?.rules).toMatchObject({ minimum: 4, completeAfterMs: 180_000, reopenLate: false });
    expect(volumes?.rules.expect).toHaveLength(7);
    expect(config.plugins.map((p) => p.use)).toEqual(['archive', 'radar-volume']);
  });

  it('the example plugin counts files per source and day and keeps them across restarts', async () => {
    // Imported by URL so the type check does not need the built `poller/plugin` (dist/) to exist.
    const mod = (await import(pathToFileURL(path.join(EXAMPLES, 'plugins', 'count-volumes.ts')).href)) as {
      default: Plugin;
    };
    const plugin = mod.default;
    const stateDir = await mkdtemp(path.join(os.tmpdir(), 'poller-count-'));
    dirs.push(stateDir);
    const { log } = createLogSink('silent');
    const options = plugin.options?.parse({ flushEvery: 2 }) as { flushEvery: number };
    const base = { log, options, stateDir, signal: new AbortController().signal };
    const file = (remotePath: string, sizeBytes: number) => ({
      localPath: '/dev/null',
      remotePath,
      source: 'radar',
      sizeBytes,
      mtimeMs: Date.parse('2026-11-23T05:15:00Z'),
      attempt: 1,
    });
    await plugin.setup?.(base);
    for (const [i, size] of [100, 200, 300].entries())
      await plugin.process(file(`v${i}.bufr`, size), { ...base, attempt: 1, emit: () => undefined });
    await expect(
      plugin.process(file('empty.bufr', 0), { ...base, attempt: 1, emit: () => undefined }),
    ).rejects.toMatchObject({ code: 'COUNT_VOLUMES_EMPTY' });
    await plugin.teardown?.(base);
    const counts = JSON.parse(await readFile(path.join(stateDir, 'counts.json'), 'utf8'));
    expect(counts).toEqual({ radar: { '2026-11-23': { files: 3, bytes: 600 } } });
  });
});
