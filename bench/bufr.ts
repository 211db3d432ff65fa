/**
 * BUFR decoder benchmark against ecCodes' bufr_dump, on the same files in the same run.
 *   npm run bench:bufr            (= npm run build && node dist/bench/bufr.js)
 * Cases: the 1.7 MB RMA11 DBZH polar volume (decode + inflate every sweep), and every small
 * fixture message file (decode + JSON document) against `bufr_dump -jf`. Our side runs in a child
 * process so its peak RSS is its own; ecCodes' peak RSS comes from `/usr/bin/time -v`.
 * Results: bench/results/bufr-<date>.json. Environment: POLLER_BUFR_FIXTURES (fixture folder),
 * BENCH_BUFR_SKIP_ECCODES_VOLUME=1 skips ecCodes on the volume (about 40 s and 9 GB).
 * Memory case: a generated satellite-like swath (one compressed message of 60,000 subsets, about
 * 2.4 MB, like a HIRS level-1 file) decoded and streamed as JSON: peak RSS per MB of input, against
 * the bound of 10x the message size + 100 MB, and the time against `bufr_dump -jf`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeBufr } from '../plugins/bufr/decoder/index.js';
import { findRepoRoot, loadLocalTables, OPERA_LOCAL } from '../plugins/bufr/decoder/tables.js';
import { encodeSatelliteSwath } from '../plugins/bufr/encoder/satellite.js';
import { jsonChunks, toJsonDocument } from '../plugins/bufr/output/document.js';

const VOLUME = 'radarlib-invap/RMA11_0315_01_DBZH_20251020T152828Z.BUFR';
const ECCODES_LOCAL = '/usr/share/eccodes/definitions/bufr/tables/0/local';
const LIMIT_VOLUME_MS = 500;
const LIMIT_VOLUME_RSS_MB = 200;
const SWATH_SUBSETS = 60_000;
// The bound: peak memory within 10x the message size + 100 MB.
const swathLimitMb = (sizeBytes: number) => (10 * sizeBytes) / 2 ** 20 + 100;

interface ChildResult {
  wallMs: number;
  decodeMs: number;
  maxRssMb: number;
  messages: number;
  failed: number;
}

/** Child mode: decode the files given, report timings and own peak RSS as one JSON line. */
function child(args: string[]): void {
  const tablesAt = args.indexOf('--tables');
  const tables = tablesAt >= 0 ? loadLocalTables(args[tablesAt + 1]!) : undefined;
  const files = args.filter((a, i) => !a.startsWith('--') && (tablesAt < 0 || i !== tablesAt + 1));
  const json = args.includes('--json');
  const t0 = performance.now();
  let messages = 0;
  let failed = 0;
  for (const f of files) {
    const res = decodeBufr(readFileSync(f), tables ? { tables } : {});
    messages += res.messages.length;
    failed += res.messages.filter((m) => !m.ok).length;
    // Streamed as the CLI does; only the length is kept.
    if (json) for (const c of jsonChunks(toJsonDocument(res, f))) void c.length;
  }
  const decodeMs = performance.now() - t0;
  const out: Omit<ChildResult, 'wallMs'> = {
    decodeMs,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    messages,
    failed,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function runOurs(files: string[], extra: string[]): ChildResult {
  const self = fileURLToPath(import.meta.url);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [self, '--child', ...extra, ...files], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return { wallMs, ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<ChildResult, 'wallMs'>) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function hasCommand(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Run `bufr_dump -jf file` under /usr/bin/time -v: wall time and peak RSS. */
function runEccodes(file: string, defs?: string): { wallMs: number; maxRssMb: number; ok: boolean } {
  const env = defs
    ? { ...process.env, ECCODES_DEFINITION_PATH: `${defs}:/usr/share/eccodes/definitions` }
    : process.env;
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', 'bufr_dump', '-jf', file], {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallMs = performance.now() - t0;
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
  return { wallMs, maxRssMb: rss ? Number(rss[1]) / 1024 : Number.NaN, ok: r.status === 0 };
}

/** ecCodes-format local tables for centre 41 (SMN) with the OPERA radar descriptors. */
function operaDefinitions(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-bufr-defs-'));
  const six = (n: number) => String(n).padStart(6, '0');
  const el = ['#code|abbreviation|type|name|unit|scale|reference|width|crex_unit|crex_scale|crex_width'];
  for (const e of OPERA_LOCAL.elements.values()) {
    const type = e.isString ? 'string' : /TABLE/.test(e.unit) ? 'table' : 'long';
    el.push(
      `${six(e.code)}|${e.key}|${type}|${e.name.toUpperCase()}|${e.unit}|${e.scale}|${e.reference}|${e.width}|${e.unit}|${e.scale}|5`,
    );
  }
  const seq = [...OPERA_LOCAL.sequences].map(([k, v]) => `"${six(k)}" = [ ${v.map(six).join(', ')} ]`);
  for (const version of ['1', '2']) {
    const local = path.join(dir, 'bufr', 'tables', '0', 'local', version, '41', '0');
    mkdirSync(local, { recursive: true });
    writeFileSync(path.join(local, 'element.table'), `${el.join('\n')}\n`);
    writeFileSync(path.join(local, 'sequence.def'), `${seq.join('\n')}\n`);
  }
  return dir;
}

function smallFiles(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ['pybufrkit-benchmark', 'pybufrkit-data', 'synthetic']) {
    const p = path.join(dir, sub);
    if (!existsSync(p)) continue;
    for (const f of readdirSync(p).sort()) {
      const base = f.replace(/\.bufr$/i, '');
      // Only files ecCodes decodes, so both sides do the same work.
      if (
        /\.bufr$/i.test(f) &&
        (existsSync(path.join(p, `${base}.eccodes.json`)) || existsSync(path.join(p, `${base}.eccodes.json.gz`)))
      )
        out.push(path.join(p, f));
    }
  }
  return out;
}

function main(): void {
  const root = findRepoRoot();
  const { POLLER_BUFR_FIXTURES: fromEnv, BENCH_BUFR_SKIP_ECCODES_VOLUME: skipVolume } = process.env;
  const fixtures = fromEnv ?? path.resolve(root, '..', 'shared', 'fixtures', 'bufr');
  if (!existsSync(path.join(fixtures, VOLUME))) {
    console.error(`bench:bufr: fixtures not found at ${fixtures}; set POLLER_BUFR_FIXTURES`);
    process.exitCode = 2;
    return;
  }
  const haveEccodes = hasCommand('bufr_dump', ['-V']) && existsSync('/usr/bin/time');
  if (!haveEccodes)
    console.warn(
      'bench:bufr: bufr_dump or /usr/bin/time missing (scripts/install-eccodes.sh); ecCodes columns will be empty',
    );
  const volume = path.join(fixtures, VOLUME);
  const radarTables = path.join(fixtures, 'radarlib-invap', 'tables');

  // 1. The polar volume: decode and inflate every sweep.
  const vol = [0, 1, 2].map(() => runOurs([volume], ['--tables', radarTables]));
  const ours = {
    decodeMs: median(vol.map((v) => v.decodeMs)),
    wallMs: median(vol.map((v) => v.wallMs)),
    maxRssMb: Math.max(...vol.map((v) => v.maxRssMb)),
  };
  let ecVol: ReturnType<typeof runEccodes> | undefined;
  if (haveEccodes && skipVolume !== '1') {
    console.log('bench:bufr: running bufr_dump on the 1.7 MB volume (slow) ...');
    ecVol = runEccodes(volume, operaDefinitions());
  }

  // 2. The small-message fixture set.
  const files = smallFiles(fixtures);
  const tablesForSmall = existsSync(ECCODES_LOCAL) ? ['--tables', ECCODES_LOCAL] : [];
  const small = [0, 1, 2].map(() => runOurs(files, ['--json', ...tablesForSmall]));
  const oursSmall = {
    decodeMs: median(small.map((v) => v.decodeMs)),
    wallMs: median(small.map((v) => v.wallMs)),
    maxRssMb: Math.max(...small.map((v) => v.maxRssMb)),
  };
  let ecSmall: { wallMs: number; maxRssMb: number; failed: number } | undefined;
  if (haveEccodes) {
    const runs = files.map((f) => runEccodes(f));
    ecSmall = {
      wallMs: runs.reduce((a, r) => a + r.wallMs, 0),
      maxRssMb: Math.max(...runs.map((r) => r.maxRssMb)),
      failed: runs.filter((r) => !r.ok).length,
    };
  }

  // 3. Memory: a large satellite-like compressed message.
  const swathFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'bench-bufr-swath-')), 'swath.bufr');
  writeFileSync(swathFile, encodeSatelliteSwath({ subsets: SWATH_SUBSETS }));
  const swathBytes = statSync(swathFile).size;
  const sw = [0, 1, 2].map(() => runOurs([swathFile], ['--json']));
  const oursSwath = {
    decodeMs: median(sw.map((v) => v.decodeMs)),
    wallMs: median(sw.map((v) => v.wallMs)),
    maxRssMb: Math.max(...sw.map((v) => v.maxRssMb)),
  };
  const ecSwath = haveEccodes ? runEccodes(swathFile) : undefined;

  const ratio = (a: number | undefined, b: number) => (a === undefined ? null : Math.round((a / b) * 10) / 10);
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    volume: {
      file: VOLUME,
      sizeBytes: statSync(volume).size,
      ours: { ...ours, limitMs: LIMIT_VOLUME_MS, limitRssMb: LIMIT_VOLUME_RSS_MB },
      eccodes: ecVol ?? null,
      speedup: ratio(ecVol?.wallMs, ours.wallMs),
      memoryRatio: ratio(ecVol?.maxRssMb, ours.maxRssMb),
      withinLimits: ours.decodeMs <= LIMIT_VOLUME_MS && ours.maxRssMb <= LIMIT_VOLUME_RSS_MB,
    },
    smallSet: {
      files: files.length,
      messages: small[0]!.messages,
      ours: oursSmall,
      eccodes: ecSmall ?? null,
      speedup: ratio(ecSmall?.wallMs, oursSmall.wallMs),
      notSlower: ecSmall ? oursSmall.wallMs <= ecSmall.wallMs : null,
    },
    swath: {
      subsets: SWATH_SUBSETS,
      sizeBytes: swathBytes,
      ours: { ...oursSwath, limitRssMb: swathLimitMb(swathBytes) },
      rssMbPerInputMb: Math.round((oursSwath.maxRssMb / (swathBytes / 2 ** 20)) * 10) / 10,
      eccodes: ecSwath ?? null,
      timeRatio: ecSwath ? Math.round((oursSwath.wallMs / ecSwath.wallMs) * 10) / 10 : null,
      withinLimits: oursSwath.maxRssMb <= swathLimitMb(swathBytes),
    },
  };
  const f1 = (n: number | undefined | null) => (n === undefined || n === null || Number.isNaN(n) ? '-' : n.toFixed(0));
  console.log(
    'case                     ours wall ms  ours decode ms  ours RSS MB  ecCodes wall ms  ecCodes RSS MB  speed-up  memory',
  );
  console.log(
    `RMA11 DBZH volume        ${f1(ours.wallMs).padStart(12)}  ${f1(ours.decodeMs).padStart(14)}  ${f1(ours.maxRssMb).padStart(11)}  ${f1(ecVol?.wallMs).padStart(15)}  ${f1(ecVol?.maxRssMb).padStart(14)}  ${String(result.volume.speedup ?? '-').padStart(8)}  ${String(result.volume.memoryRatio ?? '-').padStart(6)}`,
  );
  console.log(
    `small set (${files.length} files)    ${f1(oursSmall.wallMs).padStart(12)}  ${f1(oursSmall.decodeMs).padStart(14)}  ${f1(oursSmall.maxRssMb).padStart(11)}  ${f1(ecSmall?.wallMs).padStart(15)}  ${f1(ecSmall?.maxRssMb).padStart(14)}  ${String(result.smallSet.speedup ?? '-').padStart(8)}`,
  );
  console.log(
    `swath (${SWATH_SUBSETS} subsets) ${f1(oursSwath.wallMs).padStart(12)}  ${f1(oursSwath.decodeMs).padStart(14)}  ${f1(oursSwath.maxRssMb).padStart(11)}  ${f1(ecSwath?.wallMs).padStart(15)}  ${f1(ecSwath?.maxRssMb).padStart(14)}  (${result.swath.rssMbPerInputMb} MB RSS per MB of input)`,
  );
  const outDir = path.join(root, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `bufr-${result.date.slice(0, 10)}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${path.relative(root, out)}`);
  if (!result.volume.withinLimits) {
    console.error(
      `bench:bufr: volume decode ${ours.decodeMs.toFixed(0)} ms / ${ours.maxRssMb.toFixed(0)} MB exceeds ${LIMIT_VOLUME_MS} ms / ${LIMIT_VOLUME_RSS_MB} MB`,
    );
    process.exitCode = 1;
  }
  if (!result.swath.withinLimits) {
    console.error(
      `bench:bufr: swath peak RSS ${oursSwath.maxRssMb.toFixed(0)} MB exceeds ${swathLimitMb(swathBytes).toFixed(0)} MB (10x the message + 100 MB)`,
    );
    process.exitCode = 1;
  }
}

if (process.argv[2] === '--child') child(process.argv.slice(3));
else main();
