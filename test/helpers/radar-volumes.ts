/**
 * INVAP-style radar volume files for tests (`RMA1_0315_01_DBZH_20261123T120000Z.BUFR`): one
 * ODIM-in-BUFR file per moment, made by the project's own encoder, and the `volumes:` block and
 * plugins that group them.
 */
import path from 'node:path';
import { encodeRadarVolume } from '../../plugins/bufr/encoder/radar.js';
import { FIXTURE_PLUGINS } from './engine-env.js';

export const RMA_PATTERN =
  '(?<radar>RMA\\d+)_(?<strategy>\\d{4})_(?<scan>\\d{2})_(?<moment>[A-Z]+)_(?<time>\\d{8}T\\d{6}Z)\\.BUFR$';
export const MOMENTS = ['DBZH', 'KDP', 'VRAD'] as const;

const pad = (n: number) => String(n).padStart(2, '0');

export function stampOf(t: Date): string {
  return `${t.getUTCFullYear()}${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}T${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}${pad(t.getUTCSeconds())}Z`;
}

/** The file name of one member, and its volume key (radar_strategy_scan_time). */
export function memberName(radar: string, t: Date, moment: string): { name: string; key: string } {
  const stamp = stampOf(t);
  return { name: `${radar}_0315_01_${moment}_${stamp}.BUFR`, key: `${radar}_0315_01_${stamp}` };
}

/** One member file's bytes: two small sweeps of a deterministic field. */
export function memberBytes(radar: string, t: Date, moment: string, seed = 0): Uint8Array {
  const rays = 36;
  const bins = 24;
  return encodeRadarVolume({
    radar,
    time: t,
    quantity: moment,
    latitudeDeg: -31.4,
    longitudeDeg: -64.2,
    heightM: 480,
    sweeps: [0.5, 1.3].map((elevationDeg, s) => ({
      elevationDeg,
      rays,
      bins,
      rangeStepM: 1000,
      data: Float64Array.from({ length: rays * bins }, (_, i) => ((i * 7 + s * 3 + seed) % 60) - 10),
    })),
  });
}

/** A source's `volumes:` block for these files. */
export function volumesBlock(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { pattern: RMA_PATTERN, member: 'moment', expect: [...MOMENTS], minimum: 2, completeAfter: '10m', ...over };
}

/** The volume-record test plugin entry. */
export function volumeRecorder(log: string, options: Record<string, unknown> = {}, over: Record<string, unknown> = {}) {
  return { use: path.join(FIXTURE_PLUGINS, 'volume-record.mjs'), options: { log, ...options }, ...over };
}

export interface VolumeRecorded {
  key: string;
  version: number;
  fields: Record<string, string>;
  members: string[];
  complete: boolean;
  partial: boolean;
  missing: string[];
  attempt: number;
  pid: number;
  localPaths: string[];
}
