import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBufr } from '../../plugins/bufr/decoder/index.js';
import { encodeRadarVolume } from '../../plugins/bufr/encoder/radar.js';
import { rng } from '../../plugins/bufr/encoder/sample.js';
import { encodeSynop } from '../../plugins/bufr/encoder/synop.js';
import { bufrFixturesDir } from '../integration/bufr.compare.js';

function samples(): Array<{ name: string; bytes: Uint8Array }> {
  const t = new Date(Date.UTC(2026, 0, 1));
  const own = [
    {
      name: 'own-synop',
      bytes: encodeSynop(
        [0, 1, 2].map((i) => ({
          block: 10,
          station: i,
          name: `S${i}`,
          latitudeDeg: i,
          longitudeDeg: i,
          heightM: i,
          time: t,
          airTemperatureK: 270 + i,
          pressurePa: 1e5,
        })),
      ),
    },
    {
      name: 'own-radar',
      bytes: encodeRadarVolume({
        radar: 'F',
        time: t,
        quantity: 'DBZH',
        sweeps: [{ elevationDeg: 1, rays: 20, bins: 30, data: new Float64Array(600).map((_, i) => i % 37) }],
      }),
    },
  ];
  const dir = bufrFixturesDir();
  if (!dir) return own;
  const files: Array<{ name: string; bytes: Uint8Array }> = [];
  for (const sub of readdirSync(dir)) {
    const p = path.join(dir, sub);
    if (!statSync(p).isDirectory()) continue;
    for (const f of readdirSync(p)) {
      if (!/\.bufr$/i.test(f)) continue;
      files.push({ name: f, bytes: readFileSync(path.join(p, f)) });
    }
  }
  return [...own, ...files];
}

function mutate(bytes: Uint8Array, r: () => number): Uint8Array {
  const kind = Math.floor(r() * 4);
  if (kind === 0) return bytes.subarray(0, Math.floor(r() * bytes.length));
  const out = Uint8Array.from(bytes);
  if (kind === 1) {
    const flips = 1 + Math.floor(r() * 16);
    for (let i = 0; i < flips; i++) {
      const bit = Math.floor(r() * out.length * 8);
      out[bit >> 3]! ^= 0x80 >> (bit & 7);
    }
    return out;
  }
  if (kind === 2) {
    // Header fields are where corruption hurts most: hit the first 64 bytes.
    const n = 1 + Math.floor(r() * 4);
    for (let i = 0; i < n; i++) out[Math.floor(r() * Math.min(64, out.length))] = Math.floor(r() * 256);
    return out;
  }
  const at = Math.floor(r() * out.length);
  const len = 1 + Math.floor(r() * 64);
  for (let i = at; i < Math.min(out.length, at + len); i++) out[i] = Math.floor(r() * 256);
  return out;
}

function check(bytes: Uint8Array, what: string): void {
  let res: ReturnType<typeof decodeBufr>;
  try {
    res = decodeBufr(bytes);
  } catch (err) {
    throw new Error(`${what}: decodeBufr threw ${(err as Error).stack}`);
  }
  for (const m of res.messages) {
    if (m.ok) {
      if (m.radarError) expect(m.radarError.code, what).toMatch(/^BUFR_RADAR_/);
      continue;
    }
    expect(m.error.code, what).toMatch(/^BUFR_[A-Z_]+$/);
    // A crash inside the decoder (TypeError, RangeError) would surface as BUFR_INTERNAL.
    expect(m.error.code, `${what}: ${m.error.message}`).not.toBe('BUFR_INTERNAL');
  }
}

describe('bufr fuzz', () => {
  const all = samples();
  const rssStart = process.memoryUsage().rss;

  it('survives bit flips, overwritten bytes and truncations of every sample', () => {
    for (const [fi, s] of all.entries()) {
      const r = rng(1000 + fi);
      // Fewer rounds for the big radar volumes keep the whole test within a few seconds.
      const rounds = s.bytes.length > 500_000 ? 2 : s.bytes.length > 20_000 ? 6 : 20;
      for (let k = 0; k < rounds; k++) check(mutate(s.bytes, r), `${s.name} seed ${1000 + fi} round ${k}`);
    }
  });

  it('survives random bytes and random bytes behind a BUFR header', () => {
    const r = rng(42);
    for (let k = 0; k < 300; k++) {
      const len = 8 + Math.floor(r() * 600);
      const b = new Uint8Array(len).map(() => Math.floor(r() * 256));
      check(b, `random ${k}`);
      b.set([0x42, 0x55, 0x46, 0x52, 0, (len >> 8) & 0xff, len & 0xff, 2 + Math.floor(r() * 3)], 0);
      b.set([0x37, 0x37, 0x37, 0x37], len - 4);
      check(b, `framed random ${k}`);
    }
  });

  it('stays within bounded memory', () => {
    expect(process.memoryUsage().rss - rssStart).toBeLessThan(1024 * 1024 * 1024);
  });
});
