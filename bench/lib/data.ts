/** Generated data for the benchmarks: random bytes (nothing compresses), mtimes in the past. */
import { randomFillSync } from 'node:crypto';
import { mkdir, open, utimes } from 'node:fs/promises';
import path from 'node:path';

const CHUNK_BYTES = 8 * 1024 * 1024;

/** Writes `sizeBytes` random bytes to `file` and sets its mtime. */
export async function writeRandomFile(file: string, sizeBytes: number, mtime: Date): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const fh = await open(file, 'w', 0o644);
  try {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(sizeBytes, 1)));
    for (let left = sizeBytes; left > 0; ) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      await fh.write(buf, 0, n);
      left -= n;
    }
  } finally {
    await fh.close();
  }
  await utimes(file, mtime, mtime);
}

/** `count` files of `sizeBytes` spread over `dirs` directories `d00`... under `root`; returns relative paths. */
export async function writeFlatTree(
  root: string,
  count: number,
  dirs: number,
  sizeBytes: number,
  mtime: Date,
): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const rel = path.join(`d${String(i % dirs).padStart(2, '0')}`, `f${String(i).padStart(5, '0')}.bin`);
    await writeRandomFile(path.join(root, rel), sizeBytes, mtime);
    paths.push(rel);
  }
  return paths;
}

export interface RadarVolume {
  /** Volume time (epoch ms), also the files' mtime. */
  timeMs: number;
  /** Paths relative to the feed root. */
  files: string[];
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/**
 * A radar feed as a dated tree `<site>/<YYYY>/<MM>/<DD>/<site>_<YYYYMMDDHHmm>_<NN>.bufr`: one
 * volume every 5 minutes of `files` sweeps, the newest `newestAgeMs` old (older than the settle
 * window, so every file is taken at first sight).
 */
export async function writeRadarFeed(
  root: string,
  opts: { site: string; volumes: number; filesPerVolume: number; sizeBytes: number; newestAgeMs: number },
): Promise<RadarVolume[]> {
  const stepMs = 5 * 60_000;
  const newest = Math.floor((Date.now() - opts.newestAgeMs) / stepMs) * stepMs;
  const volumes: RadarVolume[] = [];
  for (let v = opts.volumes - 1; v >= 0; v--) {
    const t = new Date(newest - v * stepMs);
    const day = `${t.getUTCFullYear()}/${pad(t.getUTCMonth() + 1)}/${pad(t.getUTCDate())}`;
    const stamp = `${t.getUTCFullYear()}${pad(t.getUTCMonth() + 1)}${pad(t.getUTCDate())}${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}`;
    const files: string[] = [];
    for (let s = 0; s < opts.filesPerVolume; s++) {
      const rel = path.posix.join(opts.site, day, `${opts.site}_${stamp}_${pad(s)}.bufr`);
      await writeRandomFile(path.join(root, rel), opts.sizeBytes, t);
      files.push(rel);
    }
    volumes.push({ timeMs: t.getTime(), files });
  }
  return volumes;
}
