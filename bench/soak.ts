/**
 * `npm run bench -- soak`: poller as a daemon for a simulated week, not a test. An embedded FTP
 * server (ftp-srv) serves a generated radar feed (SOAK_RADARS radars x SOAK_MOMENTS moments every
 * simulated 5 minutes, real BUFR from the project's encoder) with time compressed SOAK_COMPRESSION
 * times; the daemon polls it every second with the archive and bufr plugins on and a maxAge that
 * spans a few simulated hours, so retention prunes all along. Every few seconds it samples RSS,
 * V8 heap, open descriptors, ledger rows and bytes; at the end it prints the slope of each over the
 * second half of the run and checks that every file written was downloaded exactly once.
 * Knobs: SOAK_MINUTES (default 30), SOAK_COMPRESSION (336: a week in 30 minutes), SOAK_RADARS
 * (10), SOAK_MOMENTS (10), SOAK_WINDOW_S (maxAge in real seconds, default 180: ftp-srv lists times to the minute).
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileSystem } from 'ftp-srv';
import { encodeRadarVolume } from '../plugins/bufr/encoder/radar.js';
import { createQuietFtpSrv } from '../src/demo/ftp-srv.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(REPO_ROOT, 'bin', 'poller.js');
const SIM_STEP_MS = 5 * 60_000;
const SAMPLE_MS = 5_000;

interface Sample {
  realS: number;
  simDays: number;
  rssMb: number;
  heapMb: number;
  fds: number;
  ledgerMb: number;
  fileRows: number;
  runRows: number;
}

const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);

export async function benchSoak(): Promise<void> {
  const minutes = num('SOAK_MINUTES', 30);
  const compression = num('SOAK_COMPRESSION', 336);
  const radars = num('SOAK_RADARS', 10);
  const moments = num('SOAK_MOMENTS', 10);
  const windowS = num('SOAK_WINDOW_S', 180);
  const tickMs = SIM_STEP_MS / compression;
  const dir = path.join(os.tmpdir(), `poller-soak-${process.pid}`);
  const feed = path.join(dir, 'feed');
  await mkdir(feed, { recursive: true });
  console.log(
    `soak: ${minutes} min real = ${((minutes * compression) / 1440).toFixed(1)} simulated days; ${radars * moments} files every ${tickMs.toFixed(0)} ms; maxAge ${windowS} s`,
  );

  // One real BUFR volume per moment, reused with new names: encoding is not what is measured.
  const templates = Array.from({ length: moments }, (_, m) =>
    encodeRadarVolume({
      radar: 'SOAK',
      time: new Date(Date.UTC(2026, 0, 1)),
      quantity: m % 2 === 0 ? 'DBZH' : 'VRAD',
      latitudeDeg: -34.6,
      longitudeDeg: -58.4,
      heightM: 30,
      sweeps: [{ elevationDeg: 0.5, rays: 36, bins: 40, rangeStepM: 1000, data: new Float64Array(36 * 40).fill(m) }],
    }),
  );

  const retrieved = new Map<string, number>();
  const { server, net } = createQuietFtpSrv({
    url: 'ftp://127.0.0.1:0',
    pasv_url: '127.0.0.1',
    pasv_min: 50000,
    pasv_max: 59999,
    anonymous: false,
  });
  server.on('login', ({ connection, username, password }, resolve, reject) => {
    if (username !== 'soak' || password !== 'soak-pass') return reject(new Error('Login incorrect'));
    connection.on('RETR', (error: unknown, filePath: string) => {
      if (!error) retrieved.set(filePath, (retrieved.get(filePath) ?? 0) + 1);
    });
    resolve({ fs: new FileSystem(connection, { root: feed, cwd: '/' }) });
  });
  await server.listen();
  const address = net.address();
  const ftpPort = typeof address === 'object' && address ? address.port : 0;
  const httpPort = 20000 + (process.pid % 10000);
  const config = {
    landing: path.join(dir, 'landing'),
    ledger: path.join(dir, 'ledger.db'),
    log: { level: process.env['SOAK_LOG'] ?? 'warn' },
    http: { port: httpPort },
    retention: { every: '10s' },
    sources: [
      {
        name: 'feed',
        url: `ftp://soak@127.0.0.1:${ftpPort}/`,
        password: '${SOAK_FTP_PASSWORD}',
        include: ['**/*.bufr'],
        every: '1s',
        maxAge: `${windowS}s`,
        concurrency: 4,
      },
    ],
    plugins: [
      { use: 'archive', options: { root: path.join(dir, 'archive'), layout: '{source}/{dir}' } },
      { use: 'bufr', options: { out: path.join(dir, 'decoded') } },
    ],
  };
  const configPath = path.join(dir, 'poller.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const daemon = spawn(process.execPath, [CLI, 'run', '--config', configPath], {
    env: { ...process.env, SOAK_FTP_PASSWORD: 'soak-pass' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // The daemon's warnings and errors, for a look when a check fails (SOAK_KEEP=1 keeps the folder).
  const logFile = (await import('node:fs')).createWriteStream(path.join(dir, 'daemon.log'));
  daemon.stdout?.pipe(logFile);

  const started = Date.now();
  const deadline = started + minutes * 60_000;
  const written: string[] = [];
  const samples: Sample[] = [];
  let tick = 0;
  let nextSample = started + SAMPLE_MS;
  // Bounded: one iteration per tick of the run's length.
  while (Date.now() < deadline && daemon.exitCode === null) {
    const tickDir = `t${String(tick).padStart(6, '0')}`;
    await mkdir(path.join(feed, tickDir), { recursive: true });
    const now = new Date();
    for (let r = 0; r < radars; r++) {
      for (let m = 0; m < moments; m++) {
        const rel = `${tickDir}/R${r}_M${m}.bufr`;
        const full = path.join(feed, rel);
        await writeFile(full, templates[m] as Uint8Array);
        await utimes(full, now, now);
        written.push(path.join(feed, rel));
      }
    }
    // A real server rotates its files away; the daemon's landing and outputs are cleaned too.
    const old = tick - Math.ceil((3 * windowS * 1000) / tickMs);
    if (old >= 0) {
      const oldDir = `t${String(old).padStart(6, '0')}`;
      for (const root of [feed, path.join(dir, 'landing', 'feed'), path.join(dir, 'archive', 'feed')])
        await rm(path.join(root, oldDir), { recursive: true, force: true });
      await rm(path.join(dir, 'decoded', 'feed', oldDir), { recursive: true, force: true });
    }
    tick++;
    if (Date.now() >= nextSample) {
      nextSample += SAMPLE_MS;
      const s = await sample(daemon.pid as number, httpPort, config.ledger, started, compression);
      if (s) {
        samples.push(s);
        if (samples.length % 12 === 0)
          console.log(
            `  ${s.simDays.toFixed(2)} d: rss ${s.rssMb.toFixed(0)} MB, heap ${s.heapMb.toFixed(0)} MB, fds ${s.fds}, ledger ${s.fileRows} rows ${s.ledgerMb.toFixed(1)} MB`,
          );
      }
    }
    const wait = started + tick * tickMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  // Let the daemon take the last files (settle: two listings), then stop it.
  const drainDeadline = Date.now() + 60_000;
  while (Date.now() < drainDeadline && written.some((f) => !retrieved.has(f)))
    await new Promise((r) => setTimeout(r, 500));
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('close', r));
  await server.close().catch(() => undefined);

  const missed = written.filter((f) => !retrieved.has(f)).length;
  const twice = [...retrieved.values()].filter((n) => n > 1).length;
  report(samples, { written: written.length, missed, twice, windowS, tickMs, radars, moments, compression });
  if (process.env['SOAK_KEEP'] === '1') console.log(`kept ${dir} (daemon.log, ledger.db)`);
  else await rm(dir, { recursive: true, force: true });
}

async function sample(
  pid: number,
  httpPort: number,
  ledger: string,
  started: number,
  compression: number,
): Promise<Sample | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
    const fds = (await readdir(`/proc/${pid}/fd`)).length;
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const metric = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? Number.NaN);
    let bytes = 0;
    for (const f of [ledger, `${ledger}-wal`])
      bytes += await stat(f).then(
        (s) => s.size,
        () => 0,
      );
    const realS = (Date.now() - started) / 1000;
    return {
      realS,
      simDays: (realS * compression) / 86_400,
      rssMb: rssKb / 1024,
      heapMb: metric(/^poller_nodejs_heap_size_used_bytes (\S+)/m) / 1_048_576,
      fds,
      ledgerMb: bytes / 1_048_576,
      fileRows: metric(/^poller_ledger_rows\{table="files"\} (\S+)/m),
      runRows: metric(/^poller_ledger_rows\{table="plugin_runs"\} (\S+)/m),
    };
  } catch {
    return undefined;
  }
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function report(
  samples: Sample[],
  run: {
    written: number;
    missed: number;
    twice: number;
    windowS: number;
    tickMs: number;
    radars: number;
    moments: number;
    compression: number;
  },
): void {
  const half = samples.slice(Math.floor(samples.length / 2)).filter((s) => Number.isFinite(s.fileRows));
  if (half.length < 3) {
    console.log('soak: too few samples for slopes; run longer');
    return;
  }
  const x = half.map((s) => s.simDays);
  const rows: Array<[string, keyof Sample, string]> = [
    ['RSS', 'rssMb', 'MB'],
    ['V8 heap used', 'heapMb', 'MB'],
    ['open descriptors', 'fds', ''],
    ['ledger on disk', 'ledgerMb', 'MB'],
    ['ledger file rows', 'fileRows', ''],
    ['ledger plugin-run rows', 'runRows', ''],
  ];
  console.log('\n| measure (second half) | mean | min | max | slope per simulated day | % of mean per day |');
  console.log('|---|---|---|---|---|---|');
  for (const [label, key, unit] of rows) {
    const ys = half.map((s) => s[key] as number);
    const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
    const k = slope(x, ys);
    const fmt = (v: number) => `${v.toFixed(unit === 'MB' ? 1 : 0)}${unit ? ` ${unit}` : ''}`;
    console.log(
      `| ${label} | ${fmt(mean)} | ${fmt(Math.min(...ys))} | ${fmt(Math.max(...ys))} | ${k.toFixed(2)} | ${((100 * k) / mean).toFixed(2)} % |`,
    );
  }
  // Rows expected in the ledger: files arriving per second x (window + prune margin + prune period).
  const perS = (run.radars * run.moments * 1000) / run.tickMs;
  const expected = perS * (run.windowS + Math.min(3600, run.windowS) + 10);
  const maxRows = Math.max(...half.map((s) => s.fileRows));
  console.log(
    `\nfiles written ${run.written}, missed ${run.missed}, downloaded twice ${run.twice}; ledger rows max ${maxRows} vs rate x window ${expected.toFixed(0)} (${(maxRows / expected).toFixed(2)}x)`,
  );
}
