/** A small surface observation message using WMO master Table B/D descriptors only. */
import { encodeMessage } from './message.js';

/** One station's observation. Missing values are null. */
export interface SynopObservation {
  block: number;
  station: number;
  name?: string;
  latitudeDeg: number;
  longitudeDeg: number;
  heightM: number | null;
  time: Date;
  airTemperatureK: number | null;
  dewpointK?: number | null;
  pressurePa: number | null;
  relativeHumidityPct?: number | null;
  windDirectionDeg?: number | null;
  windSpeedMs?: number | null;
}

/** Descriptors of the observation message, in data order. */
export const SYNOP_DESCRIPTORS: readonly number[] = [
  1001, 1002, 1015, 301011, 301012, 5001, 6001, 7030, 12101, 12103, 10004, 13003, 11001, 11002,
];

/** Encode observations as one edition 4 message (category 0, surface land), optionally compressed. */
export function encodeSynop(
  observations: readonly SynopObservation[],
  opts: { compressed?: boolean; centre?: number } = {},
): Uint8Array {
  if (observations.length === 0) throw new Error('bufr: encodeSynop needs at least one observation');
  const first = observations[0]!.time;
  return encodeMessage({
    edition: 4,
    centre: opts.centre ?? 98,
    masterVersion: 33,
    category: 0,
    subCategory: 0,
    time: first,
    compressed: opts.compressed ?? observations.length > 1,
    descriptors: SYNOP_DESCRIPTORS,
    subsets: observations.map((o) => [
      o.block,
      o.station,
      o.name ?? null,
      o.time.getUTCFullYear(),
      o.time.getUTCMonth() + 1,
      o.time.getUTCDate(),
      o.time.getUTCHours(),
      o.time.getUTCMinutes(),
      o.latitudeDeg,
      o.longitudeDeg,
      o.heightM,
      o.airTemperatureK,
      o.dewpointK ?? null,
      o.pressurePa,
      o.relativeHumidityPct ?? null,
      o.windDirectionDeg ?? null,
      o.windSpeedMs ?? null,
    ]),
  });
}
