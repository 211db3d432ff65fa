/**
 * A satellite-radiance-like message (as a HIRS or ATMS level-1 swath): one compressed message of
 * many subsets, each a field of view with position, time, angle and a brightness temperature per
 * channel. Used by the memory benchmark and the large-message tests; master-table descriptors only.
 */
import { type EncodeValue, encodeMessage } from './message.js';
import { rng } from './sample.js';

/** Options for {@link encodeSatelliteSwath}. */
export interface SatelliteSwathOptions {
  /** Fields of view (subsets). */
  subsets: number;
  /** Channels per field of view. @default 19 */
  channels?: number;
  /** @default 1 */
  seed?: number;
  /** Share of brightness temperatures sent as missing. @default 0.02 */
  missingShare?: number;
  time?: Date;
}

const FOV_PER_SCAN = 56; // HIRS scans 56 fields of view per line

/**
 * Descriptors: satellite, instrument, orbit, date/time (3-01-011, 3-01-013), latitude and longitude
 * (high accuracy), field of view, zenith angle, then `channels` x (channel number, brightness temperature).
 */
export function satelliteSwathDescriptors(channels: number): number[] {
  // 1-02-YYY: the next two descriptors, `channels` times.
  return [1007, 2019, 5040, 301011, 301013, 5001, 6001, 5043, 7024, 102000 + channels, 5042, 12163];
}

/** Encode the swath as one compressed BUFR edition 4 message. */
export function encodeSatelliteSwath(opts: SatelliteSwathOptions): Uint8Array {
  const channels = opts.channels ?? 19;
  if (channels < 1 || channels > 99) throw new RangeError('channels must be 1 to 99');
  const r = rng(opts.seed ?? 1);
  const t0 = opts.time ?? new Date(Date.UTC(2026, 10, 23, 12, 0, 0));
  const missing = opts.missingShare ?? 0.02;
  const subsets: EncodeValue[][] = [];
  for (let i = 0; i < opts.subsets; i++) {
    const scan = Math.floor(i / FOV_PER_SCAN);
    const fov = i % FOV_PER_SCAN;
    const t = new Date(t0.getTime() + scan * 6400); // one scan line every 6.4 s
    const v: EncodeValue[] = [
      206,
      606,
      41000,
      t.getUTCFullYear(),
      t.getUTCMonth() + 1,
      t.getUTCDate(),
      t.getUTCHours(),
      t.getUTCMinutes(),
      t.getUTCSeconds(),
      Math.round((-60 + scan * 0.05 + fov * 0.01) * 1e5) / 1e5,
      Math.round((10 + fov * 0.3 + r() * 0.01) * 1e5) / 1e5,
      fov + 1,
      Math.round((fov - 28) * 1.8 * 100) / 100,
    ];
    for (let c = 1; c <= channels; c++)
      v.push(c, r() < missing ? null : Math.round((200 + c * 3 + r() * 60) * 100) / 100);
    subsets.push(v);
  }
  return encodeMessage({
    edition: 4,
    centre: 254,
    masterVersion: 33,
    category: 21,
    time: t0,
    compressed: true,
    descriptors: satelliteSwathDescriptors(channels),
    subsets,
  });
}
