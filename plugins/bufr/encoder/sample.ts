/**
 * Synthetic sample data for demos, docs and tests: a reflectivity volume with a squall line and
 * a few convective cells, and a handful of surface observations. No third-party content.
 */
import { encodeRadarVolume } from './radar.js';
import { encodeSynop, type SynopObservation } from './synop.js';

/** A small deterministic xorshift32 generator in [0, 1): the same seed gives the same data. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** Reflectivity (dBZ) of the synthetic scene at x, y km from the radar; NaN where no echo. */
function scene(xKm: number, yKm: number, noise: number): number {
  // A squall line running south-west to north-east, 60 km north-west of the radar.
  const d = (xKm - yKm) / Math.SQRT2 + 60;
  const along = (xKm + yKm) / Math.SQRT2;
  let z = 48 * Math.exp(-(d * d) / 60) * (0.75 + 0.25 * Math.sin(along / 9));
  // Stratiform rain behind the line.
  if (d > 0 && d < 40) z = Math.max(z, (24 + 6 * Math.sin(along / 17)) * (1 - d / 40));
  const cells: Array<[number, number, number, number]> = [
    [45, -30, 55, 6],
    [70, 10, 50, 5],
    [-20, -75, 42, 8],
  ];
  for (const [cx, cy, peak, r] of cells)
    z = Math.max(z, peak * Math.exp(-((xKm - cx) ** 2 + (yKm - cy) ** 2) / (2 * r * r)));
  // Ground clutter close to the radar.
  const rKm = Math.hypot(xKm, yKm);
  if (rKm < 8) z = Math.max(z, 30 - rKm * 3 + noise * 10);
  z += (noise - 0.5) * 4;
  return z < 5 ? Number.NaN : Math.round(z * 10) / 10;
}

/** Options for {@link sampleRadarVolume}. */
export interface SampleRadarOptions {
  radar?: string;
  time?: Date;
  elevationsDeg?: number[];
  rays?: number;
  bins?: number;
  rangeStepM?: number;
  seed?: number;
}

/** An ODIM-in-BUFR DBZH volume of the synthetic scene. */
export function sampleRadarVolume(opts: SampleRadarOptions = {}): Uint8Array {
  const rays = opts.rays ?? 360;
  const bins = opts.bins ?? 240;
  const step = opts.rangeStepM ?? 500;
  const time = opts.time ?? new Date(Date.UTC(2026, 10, 23, 12, 0, 0));
  const r = rng(opts.seed ?? 1);
  const sweeps = (opts.elevationsDeg ?? [0.5, 1.5, 3.0]).map((elevationDeg, k) => {
    const data = new Float64Array(rays * bins);
    const cosEl = Math.cos((elevationDeg * Math.PI) / 180);
    for (let ray = 0; ray < rays; ray++) {
      const az = (((ray + 0.5) * 360) / rays) * (Math.PI / 180);
      for (let bin = 0; bin < bins; bin++) {
        const rKm = (((bin + 0.5) * step) / 1000) * cosEl;
        // Higher sweeps overshoot distant echoes.
        const fade = Math.max(0, 1 - (rKm * Math.sin((elevationDeg * Math.PI) / 180)) / 8);
        const z = scene(rKm * Math.sin(az), rKm * Math.cos(az), r());
        data[ray * bins + bin] = Number.isNaN(z) || fade < 0.2 ? Number.NaN : Math.round(z * fade * 10) / 10;
      }
    }
    return {
      elevationDeg,
      rays,
      bins,
      rangeStepM: step,
      rangeStartM: 0,
      data,
      startTime: new Date(time.getTime() + k * 30_000),
    };
  });
  return encodeRadarVolume({
    radar: opts.radar ?? 'SAMPLE',
    time,
    quantity: 'DBZH',
    latitudeDeg: -34.6,
    longitudeDeg: -58.4,
    heightM: 25,
    sweeps,
  });
}

/** A compressed message of a few synthetic surface observations. */
export function sampleSynop(time: Date = new Date(Date.UTC(2026, 10, 23, 12, 0, 0))): Uint8Array {
  const r = rng(3);
  const names = ['ALPHA', 'BRAVO', 'CHARLIE', 'DELTA', 'ECHO'];
  const obs: SynopObservation[] = names.map((name, i) => ({
    block: 87,
    station: 100 + i,
    name,
    latitudeDeg: -34 - i * 0.5,
    longitudeDeg: -58 - i * 0.4,
    heightM: 10 + i * 12,
    time,
    airTemperatureK: i === 3 ? null : Math.round((293 + r() * 8) * 100) / 100,
    dewpointK: Math.round((285 + r() * 5) * 100) / 100,
    pressurePa: Math.round((100800 + r() * 800) / 10) * 10,
    relativeHumidityPct: Math.round(50 + r() * 40),
    windDirectionDeg: Math.round(r() * 359),
    windSpeedMs: Math.round(r() * 120) / 10,
  }));
  return encodeSynop(obs, { compressed: true });
}
