/**
 * A generated radar-like feed for the demo and for tests: ODIM-in-BUFR volumes every 5 minutes
 * from two radars, SYNOP observation bulletins, and a few files a real feed has that a poller
 * must leave alone (an upload in progress, a readme). Made by the project's own BUFR encoder:
 * no third-party data is shipped.
 */
import { mkdir, rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encodeRadarVolume } from '../../plugins/bufr/encoder/radar.js';
import { encodeSynop } from '../../plugins/bufr/encoder/synop.js';

export interface FeedOptions {
  /** Latest volume time; files are spread back from here. @default now, floored to 5 min */
  endMs?: number;
  /** How many 5-minute steps. @default 12 (one hour) */
  steps?: number;
  radars?: readonly string[];
  quantities?: readonly string[];
  rays?: number;
  bins?: number;
}

export interface FeedFile {
  path: string;
  sizeBytes: number;
  mtimeMs: number;
}

/** The nominal time between two volumes of a radar. */
export const STEP_MS = 5 * 60_000;
export const DEMO_RADARS: readonly string[] = ['ARBAR', 'ARPAR'];
const pad = (n: number) => String(n).padStart(2, '0');

function stamp(d: Date): string {
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}`;
}

/** A reflectivity-looking field: a few rain cells drifting with time. Deterministic. */
function field(rays: number, bins: number, t: number, quantity: string): Float64Array {
  const out = new Float64Array(rays * bins);
  for (let r = 0; r < rays; r++) {
    const az = (r / rays) * 2 * Math.PI;
    for (let b = 0; b < bins; b++) {
      const x = Math.cos(az) * b;
      const y = Math.sin(az) * b;
      const cell =
        Math.exp(-((x - 30 - t) ** 2 + (y - 20) ** 2) / 120) * 50 +
        Math.exp(-((x + 20) ** 2 + (y + 25 - t / 2) ** 2) / 200) * 35;
      const v = quantity === 'VRAD' ? Math.sin(az) * 12 * Math.min(1, b / 20) : cell - 5;
      out[r * bins + b] = quantity === 'VRAD' || v > 0 ? Math.round(v * 2) / 2 : Number.NaN;
    }
  }
  return out;
}

/** What one step of the feed writes: each radar's volume (one file per quantity) and, every third step, SYNOP. */
export interface StepOptions {
  /** Nominal (data) time of the step. */
  time: Date;
  /** Index of the step in the feed, for the drifting rain cells and the SYNOP rhythm. */
  index: number;
  steps: number;
  radars: readonly string[];
  quantities: readonly string[];
  rays: number;
  bins: number;
  /** Upload time of the files; @default a little after the nominal time, as radars upload, but never in the future */
  uploadedMs?: number;
}

export type PutFile = (rel: string, bytes: Uint8Array, mtimeMs: number) => Promise<void>;

/** A writer of feed files under `root`, recording each one. */
export function feedWriter(root: string, files: FeedFile[]): PutFile {
  return async (rel, bytes, mtimeMs) => {
    const full = path.join(root, ...rel.split('/'));
    await mkdir(path.dirname(full), { recursive: true });
    // Written under a temporary name and renamed, as a careful uploader does: a listing never sees half a volume.
    const partial = `${full}.tmp`;
    await writeFile(partial, bytes);
    const t = new Date(mtimeMs);
    await utimes(partial, t, t);
    await rename(partial, full);
    files.push({ path: rel, sizeBytes: bytes.length, mtimeMs });
  };
}

export async function writeDemoStep(put: PutFile, o: StepOptions): Promise<void> {
  const t = o.time;
  const i = o.index;
  const day = `${t.getUTCFullYear()}/${pad(t.getUTCMonth() + 1)}/${pad(t.getUTCDate())}`;
  for (const [k, radar] of o.radars.entries()) {
    for (const quantity of o.quantities) {
      const bytes = encodeRadarVolume({
        radar,
        time: t,
        quantity,
        latitudeDeg: -34.6 - k,
        longitudeDeg: -58.4 - k,
        heightM: 30,
        sweeps: [0.5, 1.5].map((elevationDeg, s) => ({
          elevationDeg,
          rays: o.rays,
          bins: o.bins,
          rangeStepM: 1000,
          data: field(o.rays, o.bins, (o.steps - i) * 2 + s, quantity),
        })),
      });
      // Radars upload a little after the nominal time.
      await put(
        `radar/${radar}/${day}/${radar}_${quantity}_${stamp(t)}.bufr`,
        bytes,
        o.uploadedMs ?? Math.min(Date.now(), t.getTime() + 40_000),
      );
    }
  }
  if (i % 3 === 0) {
    const obs = [0, 1, 2].map((n) => ({
      block: 87,
      station: 576 + n,
      latitudeDeg: -34.8 + n / 10,
      longitudeDeg: -58.5 + n / 10,
      heightM: 20 + n,
      time: t,
      airTemperatureK: 293.15 + n - (i % 50) / 10,
      pressurePa: 101_300 - (i % 50) * 10,
      relativeHumidityPct: 70 + n,
      windDirectionDeg: 90 * n,
      windSpeedMs: 3 + n,
    }));
    await put(
      `obs/${day}/SYNOP_${stamp(t)}.bufr`,
      encodeSynop(obs),
      o.uploadedMs ?? Math.min(Date.now(), t.getTime() + 60_000),
    );
  }
}

/** Write the feed under `root`; returns every file written with its size and mtime. */
export async function writeDemoFeed(root: string, opts: FeedOptions = {}): Promise<FeedFile[]> {
  const end = opts.endMs ?? Math.floor(Date.now() / STEP_MS) * STEP_MS;
  const steps = opts.steps ?? 12;
  const radars = opts.radars ?? DEMO_RADARS;
  const files: FeedFile[] = [];
  const put = feedWriter(root, files);
  const common = {
    steps,
    radars,
    quantities: opts.quantities ?? ['DBZH', 'VRAD'],
    rays: opts.rays ?? 90,
    bins: opts.bins ?? 60,
  };
  for (let i = 0; i < steps; i++) await writeDemoStep(put, { ...common, time: new Date(end - i * STEP_MS), index: i });
  // What a poller must not take: an upload in progress and a readme.
  await put(`radar/${radars[0]}/upload_in_progress.bufr.tmp`, new Uint8Array(1234), end);
  await put('README.txt', new TextEncoder().encode('demo feed made by poller\n'), end);
  return files;
}
