/**
 * The `radar-volume` volume plugin: once per complete (or partial) radar volume, writes under
 * `out/<source>/<volume key>/` a manifest (`<key>.volume.json`: members, sweeps, elevations,
 * times, completeness), decoded from the ODIM-in-BUFR members with the project's BUFR decoder,
 * and a PPI quicklook PNG of the lowest sweep of one moment (`<key>.<moment>.png`).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { definePlugin, PermanentError, type PluginVolume, type PluginVolumeMember } from '../../src/plugins/api.js';
import { decodeBufr, type RadarSweep, type RadarVolume } from '../bufr/decoder/index.js';
import { type LocalTable, loadLocalTables } from '../bufr/decoder/tables.js';
import { renderPpi } from '../bufr/render/ppi.js';

const options = z.object({
  /** Root of the output tree. */
  out: z.string().min(1).describe('directory the volume manifests and quicklooks are written under'),
  /** Local BUFR tables (ecCodes or OPERA CSV format), e.g. centre 41 (SMN) for INVAP radars. */
  tables: z.string().optional().describe('directory of local BUFR tables'),
  /** Moments to draw the quicklook from, first present wins; default DBZH, then any member. */
  quicklook: z
    .union([z.literal(false), z.array(z.string().min(1)).min(1)])
    .default(['DBZH', 'TH'])
    .describe('moments for the quicklook, in order of preference; false for none'),
  /** Side of the quicklook in pixels. */
  quicklookSize: z.number().int().min(64).max(4096).default(600),
});

type Options = z.output<typeof options>;

// Parsed local tables are immutable: once per worker, not once per member.
let tableCache: { dir: string; tables: LocalTable[] } | undefined;

function tablesFor(dir: string | undefined): LocalTable[] | undefined {
  if (dir === undefined) return undefined;
  if (tableCache?.dir !== dir) tableCache = { dir, tables: loadLocalTables(dir) };
  return tableCache.tables;
}

async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  // Same-directory temp + rename: a crash never leaves a half-written output under the final name.
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/** One sweep in the manifest: geometry and times, no data. */
export interface ManifestSweep {
  index: number;
  quantity: string;
  elevationDeg: number;
  rays: number;
  bins: number;
  rangeStartM: number;
  rangeStepM: number;
  startTime: string;
  endTime: string;
}

export interface ManifestMember {
  member: string;
  remotePath: string;
  sizeBytes: number;
  mtime: string;
  /** Why the member could not be read as a radar volume; absent when it was. */
  error?: string;
  station?: string | null;
  sweeps: ManifestSweep[];
}

export interface VolumeManifest {
  key: string;
  source: string;
  version: number;
  fields: Record<string, string>;
  completeness: { complete: boolean; partial: boolean; present: string[]; missing: string[] };
  times: {
    firstMemberLanded: string;
    lastMemberLanded: string;
    /** Earliest sweep start and latest sweep end over every member; null when nothing decoded. */
    scanStart: string | null;
    scanEnd: string | null;
  };
  site: { station: string | null; latitudeDeg: number | null; longitudeDeg: number | null; heightM: number | null };
  /** Distinct elevations over every member, ascending. */
  elevationsDeg: number[];
  /** Sweeps over every member. */
  sweeps: number;
  members: ManifestMember[];
  quicklook: { moment: string; elevationDeg: number; file: string } | null;
}

const iso = (ms: number) => new Date(ms).toISOString();
const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The radar volume of one member file, or why there is none. */
function decodeMember(bytes: Uint8Array, tables: LocalTable[] | undefined): RadarVolume | string {
  const result = decodeBufr(bytes, tables ? { tables } : {});
  if (result.messages.length === 0) return 'no BUFR message in the file';
  for (const m of result.messages) if (m.ok && m.radar) return m.radar;
  const first = result.messages[0];
  if (first && !first.ok) return `${first.error.code}: ${first.error.message}`;
  if (first?.ok && first.radarError) return `${first.radarError.code}: ${first.radarError.message}`;
  return 'not an ODIM-in-BUFR polar volume';
}

function sweepOf(s: RadarSweep, quantity: string): ManifestSweep {
  return {
    index: s.sweep,
    quantity,
    elevationDeg: round(s.elevationDeg, 3),
    rays: s.rays,
    bins: s.bins,
    rangeStartM: s.rangeStartM,
    rangeStepM: s.rangeStepM,
    startTime: s.startTime,
    endTime: s.endTime,
  };
}

/** Build the manifest (and pick the quicklook sweep) from the members, one decode at a time. */
export async function buildManifest(
  volume: PluginVolume,
  opts: Pick<Options, 'tables' | 'quicklook'>,
  signal: AbortSignal,
): Promise<{ manifest: VolumeManifest; quicklook?: { moment: string; sweep: RadarSweep } }> {
  const tables = tablesFor(opts.tables);
  const members: ManifestMember[] = [];
  const site: VolumeManifest['site'] = { station: null, latitudeDeg: null, longitudeDeg: null, heightM: null };
  const wanted = opts.quicklook === false ? [] : opts.quicklook;
  let pick: { moment: string; sweep: RadarSweep; rank: number } | undefined;
  const byMember = [...volume.members].sort((a, b) => a.member.localeCompare(b.member));
  for (const m of byMember) {
    signal.throwIfAborted();
    const entry = await memberEntry(m, tables);
    members.push(entry.member);
    const radar = entry.radar;
    if (!radar) continue;
    site.station ??= radar.station;
    site.latitudeDeg ??= radar.latitudeDeg;
    site.longitudeDeg ??= radar.longitudeDeg;
    site.heightM ??= radar.heightM;
    if (opts.quicklook === false || radar.sweeps.length === 0) continue;
    // Preferred moments first, in the configured order; any member with sweeps otherwise.
    const idx = wanted.indexOf(m.member);
    const rank = idx < 0 ? wanted.length : idx;
    if (pick && pick.rank <= rank) continue;
    const lowest = radar.sweeps.reduce((lo, s) => (s.elevationDeg < lo.elevationDeg ? s : lo));
    pick = { moment: m.member, sweep: lowest, rank };
  }
  const sweeps = members.flatMap((m) => m.sweeps);
  const starts = sweeps
    .map((s) => s.startTime)
    .filter(Boolean)
    .sort();
  const ends = sweeps
    .map((s) => s.endTime)
    .filter(Boolean)
    .sort();
  const manifest: VolumeManifest = {
    key: volume.key,
    source: volume.source,
    version: volume.version,
    fields: { ...volume.fields },
    completeness: {
      complete: volume.complete,
      partial: volume.partial,
      present: byMember.map((m) => m.member),
      missing: [...volume.missing],
    },
    times: {
      firstMemberLanded: iso(volume.firstMemberMs),
      lastMemberLanded: iso(volume.lastMemberMs),
      scanStart: starts[0] ?? null,
      scanEnd: ends.at(-1) ?? null,
    },
    site,
    elevationsDeg: [...new Set(sweeps.map((s) => round(s.elevationDeg, 2)))].sort((a, b) => a - b),
    sweeps: sweeps.length,
    members,
    quicklook: null,
  };
  return { manifest, ...(pick && { quicklook: { moment: pick.moment, sweep: pick.sweep } }) };
}

async function memberEntry(
  m: PluginVolumeMember,
  tables: LocalTable[] | undefined,
): Promise<{ member: ManifestMember; radar?: RadarVolume }> {
  const base = { member: m.member, remotePath: m.remotePath, sizeBytes: m.sizeBytes, mtime: iso(m.mtimeMs) };
  let radar: RadarVolume | string;
  try {
    radar = decodeMember(await readFile(m.localPath), tables);
  } catch (err) {
    radar = (err as Error).message;
  }
  if (typeof radar === 'string') return { member: { ...base, error: radar, sweeps: [] } };
  return {
    member: {
      ...base,
      station: radar.station,
      sweeps: radar.sweeps.map((s) => sweepOf(s, s.quantity || m.member)),
    },
    radar,
  };
}

/** A volume key names a directory: it must stay one path segment. */
function safeKey(key: string): string {
  if (key === '' || key === '.' || key === '..' || /[/\\\0]/.test(key))
    throw new PermanentError(
      'RADAR_VOLUME_BAD_KEY',
      `volume key "${key}" is not a usable directory name; change the volumes.pattern groups`,
    );
  return key;
}

export default definePlugin({
  kind: 'volume',
  name: 'radar-volume',
  options,
  timeoutMs: 120_000,
  // Decoding 15-sweep volumes is CPU and memory work: in worker threads, bounded.
  isolate: 'worker',
  memoryLimitMb: 1024,
  setup(ctx) {
    try {
      tablesFor(ctx.options.tables);
    } catch (err) {
      throw new PermanentError(
        'RADAR_VOLUME_TABLES_UNREADABLE',
        `radar-volume: options.tables: cannot read local tables from ${ctx.options.tables} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); fix the path`,
        { cause: err },
      );
    }
  },
  async process(volume, ctx) {
    const dir = path.join(path.resolve(ctx.options.out), safeKey(volume.source), safeKey(volume.key));
    const { manifest, quicklook } = await buildManifest(volume, ctx.options, ctx.signal);
    if (manifest.members.every((m) => m.error !== undefined))
      throw new PermanentError(
        'RADAR_VOLUME_UNDECODABLE',
        `${volume.key}: no member is an ODIM-in-BUFR radar volume (${manifest.members[0]?.error ?? 'no members'})`,
      );
    if (quicklook) {
      ctx.signal.throwIfAborted();
      const file = path.join(dir, `${volume.key}.${quicklook.moment}.png`);
      await writeAtomic(file, renderPpi(quicklook.sweep, { sizePx: ctx.options.quicklookSize }));
      manifest.quicklook = {
        moment: quicklook.moment,
        elevationDeg: round(quicklook.sweep.elevationDeg, 3),
        file: path.basename(file),
      };
      ctx.emit({ path: file, kind: 'radar-volume.quicklook' });
    }
    const json = path.join(dir, `${volume.key}.volume.json`);
    await writeAtomic(json, `${JSON.stringify(manifest, null, 2)}\n`);
    ctx.emit({ path: json, kind: 'radar-volume.manifest' });
    ctx.log.info(
      {
        event: 'radar_volume.written',
        members: manifest.members.length,
        sweeps: manifest.sweeps,
        partial: volume.partial,
      },
      'volume manifest written',
    );
  },
});
