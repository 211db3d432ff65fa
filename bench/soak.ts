/**
 * `npm run bench -- soak`: poller as a daemon under a steady feed for a long time, not a test. Three
 * sources at once, each fed SOAK_RATE files of SOAK_FILE_KIB KiB per second into one directory per
 * minute: a local directory, vsftpd (test/helpers/debian-ftp.ts) and nginx's autoindex
 * (test/helpers/http-servers.ts). The daemon polls each every second with `maxAge` SOAK_MAX_AGE_S,
 * retention every 30 s and the archive plugin on; the feed keeps SOAK_KEEP_MIN minutes of files
 * (older minutes are deleted, as a real server rotates them), landing and archive are cleaned alike.
 *
 * Every SOAK_SAMPLE_S seconds it samples the daemon's process tree: RSS (and anonymous RSS), the
 * V8 heap, external memory and array buffers of every isolate (main thread, landing writers,
 * plugin hosts; through a `--require` probe each thread loads), glibc malloc arenas, open
 * descriptors, inotify watches, threads and ledger rows. At the end it reports each one's
 * least-squares slope per hour over the second half, peak RSS, and whether every file written was
 * fetched once; the samples go to bench/results/soak-<date>.json, the table to soak-<date>.md.
 *
 * Knobs: SOAK_MINUTES (30), SOAK_RATE (20 files/s per source), SOAK_FILE_KIB (4), SOAK_MAX_AGE_S
 * (120), SOAK_KEEP_MIN (10), SOAK_SAMPLE_S (30), SOAK_SOURCES (local,ftp,http), SOAK_CLI (the CLI
 * to run, default this build's bin/poller.js: point it at another build to compare),
 * SOAK_NODE_OPTIONS (V8 flags, default the systemd unit's `--max-semi-space-size=4
 * --max-old-space-size=512`; empty for Node's defaults), SOAK_MALLOC_ARENA_MAX (2, as the unit; empty for glibc's default), SOAK_LABEL (results as soak-<label>-<date>), SOAK_KEEP=1 (keep the work folder), SOAK_LOG (daemon log level, default warn).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServerAccount, realServerSupport, startVsftpd } from '../test/helpers/debian-ftp.js';
import { httpServerMissing, startWebServer } from '../test/helpers/http-servers.js';
import { writeResult } from './lib/stats.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);

/** One isolate's figures, written by the probe each thread of the daemon loads. */
interface IsolateSample {
  pid: number;
  threadId: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  mallocedMb: number;
  resources: Record<string, number>;
}

interface Sample {
  realS: number;
  rssMb: number;
  anonMb: number;
  /** Main thread's V8 heap used. */
  heapMb: number;
  /** Sum over every isolate of the process tree. */
  heapAllMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  isolates: number;
  mallocArenas: number;
  fds: number;
  inotifyWatches: number;
  fsWatchers: number;
  threads: number;
  processes: number;
  fileRows: number;
  runRows: number;
  fetched: number;
  perIsolate: IsolateSample[];
}

/**
 * The probe: CommonJS because `--require` is what Node 20 runs in worker threads too (`--import`
 * is not). Appends one JSON line per interval and isolate; its timer never keeps a thread alive.
 */
const PROBE = `'use strict';
const fs = require('node:fs');
const path = require('node:path');
const v8 = require('node:v8');
const { threadId } = require('node:worker_threads');
const dir = process.env.POLLER_SOAK_PROBE_DIR;
if (dir) {
  const file = path.join(dir, process.pid + '-' + threadId + '.jsonl');
  const write = () => {
    try {
      const h = v8.getHeapStatistics();
      const m = process.memoryUsage();
      const resources = {};
      for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] || 0) + 1;
      fs.appendFileSync(file, JSON.stringify({ t: Date.now(), pid: process.pid, threadId, heapUsed: h.used_heap_size,
        heapTotal: h.total_heap_size, external: m.external, arrayBuffers: m.arrayBuffers, malloced: h.malloced_memory,
        resources }) + '\\n');
    } catch {}
  };
  setTimeout(write, 500).unref();
  setInterval(write, Number(process.env.POLLER_SOAK_PROBE_MS || 30000)).unref();
}
`;

export async function benchSoak(): Promise<void> {
  const minutes = num('SOAK_MINUTES', 30);
  const rate = num('SOAK_RATE', 20);
  const fileBytes = num('SOAK_FILE_KIB', 4) * 1024;
  const maxAgeS = num('SOAK_MAX_AGE_S', 120);
  const keepMin = num('SOAK_KEEP_MIN', 10);
  const sampleMs = num('SOAK_SAMPLE_S', 30) * 1000;
  const cli = process.env['SOAK_CLI'] ?? path.join(REPO_ROOT, 'bin', 'poller.js');
  // V8 flags as the systemd unit (deploy/systemd/poller.service) runs the daemon; '' for Node's defaults.
  const nodeOptions = process.env['SOAK_NODE_OPTIONS'] ?? '--max-semi-space-size=4 --max-old-space-size=512';
  const mallocArenaMax = process.env['SOAK_MALLOC_ARENA_MAX'] ?? '2';
  const kinds = (process.env['SOAK_SOURCES'] ?? 'local,ftp,http').split(',').map((s) => s.trim());
  const dir = path.join(os.tmpdir(), `poller-soak-${process.pid}`);
  const probeDir = path.join(dir, 'probe');
  await mkdir(probeDir, { recursive: true });
  const cleanups: Array<() => Promise<void>> = [];

  // The feeds: where each source's files are written, and its config entry.
  const feeds: Array<{ name: string; root: string; source: Record<string, unknown> }> = [];
  const common = { every: '1s', maxAge: `${maxAgeS}s`, concurrency: 4 };
  if (kinds.includes('local')) {
    const root = path.join(dir, 'local-feed');
    await mkdir(root);
    feeds.push({ name: 'local', root, source: { name: 'local', url: `file://${root}`, ...common } });
  }
  if (kinds.includes('ftp')) {
    const support = realServerSupport().vsftpd;
    if (!support.available) console.log(`soak: ftp skipped: ${support.reason}`);
    else {
      const account = await createServerAccount();
      const server = await startVsftpd({ account, tls: 'none' });
      cleanups.push(async () => {
        await server.close();
        await account.remove();
      });
      feeds.push({
        name: 'ftp',
        root: account.root,
        source: {
          name: 'ftp',
          url: `ftp://${account.user}@127.0.0.1:${server.port}/`,
          password: '${SOAK_FTP_PASSWORD}',
          ...common,
        },
      });
      process.env['SOAK_FTP_PASSWORD'] = account.password;
    }
  }
  if (kinds.includes('http')) {
    const missing = httpServerMissing('nginx-html');
    if (missing) console.log(`soak: http skipped: ${missing}`);
    else {
      const web = await startWebServer('nginx-html');
      cleanups.push(() => web.close());
      feeds.push({
        name: 'http',
        root: web.root,
        source: { name: 'http', url: `http://127.0.0.1:${web.port}/`, ...common },
      });
    }
  }
  if (feeds.length === 0) {
    console.log('soak: no source can run here (scripts/install-test-servers.sh, scripts/install-http-servers.sh)');
    return;
  }

  const httpPort = 20000 + (process.pid % 10000);
  const config = {
    landing: path.join(dir, 'landing'),
    ledger: path.join(dir, 'ledger.db'),
    log: { level: process.env['SOAK_LOG'] ?? 'warn' },
    http: { port: httpPort },
    retention: { every: '30s' },
    sources: feeds.map((f) => f.source),
    plugins: [{ use: 'archive', options: { root: path.join(dir, 'archive'), layout: '{source}/{dir}' } }],
  };
  const configPath = path.join(dir, 'poller.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const probePath = path.join(dir, 'probe.cjs');
  await writeFile(probePath, PROBE);
  console.log(
    `soak: ${minutes} min, ${feeds.map((f) => f.name).join(' + ')}, ${rate} files/s x ${fileBytes / 1024} KiB each, maxAge ${maxAgeS} s, feed keeps ${keepMin} min, sample every ${sampleMs / 1000} s; ${cli} ${nodeOptions} MALLOC_ARENA_MAX=${mallocArenaMax || '(glibc default)'}`,
  );
  const daemon = spawn(process.execPath, [cli, 'run', '--config', configPath], {
    env: {
      ...process.env,
      NODE_OPTIONS: `${nodeOptions} --require ${probePath}`.trim(),
      // As the systemd unit runs it (glibc reads this at start, so it is set for the process).
      ...(mallocArenaMax !== '' && { MALLOC_ARENA_MAX: mallocArenaMax }),
      POLLER_SOAK_PROBE_DIR: probeDir,
      POLLER_SOAK_PROBE_MS: String(sampleMs),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(path.join(dir, 'daemon.log'));
  daemon.stdout?.pipe(log);
  daemon.stderr?.pipe(log);

  const payload = Buffer.alloc(fileBytes, 0x42);
  const started = Date.now();
  const deadline = started + minutes * 60_000;
  const samples: Sample[] = [];
  let written = 0;
  let second = 0;
  let nextSample = started + sampleMs;
  const minuteDir = (ms: number) => `m${String(Math.floor((ms - started) / 60_000)).padStart(5, '0')}`;
  // Bounded: one iteration per second of the run.
  while (Date.now() < deadline && daemon.exitCode === null) {
    const now = Date.now();
    const sub = minuteDir(now);
    for (const f of feeds) {
      await mkdir(path.join(f.root, sub), { recursive: true });
      for (let i = 0; i < rate; i++) {
        await writeFile(path.join(f.root, sub, `s${String(second).padStart(6, '0')}_${i}.dat`), payload);
        written++;
      }
    }
    // A minute past the feed's keep: gone from the feed, the landing and the archive.
    if (second % 60 === 0) {
      const old = minuteDir(now - (keepMin + 1) * 60_000);
      if (now - started > (keepMin + 1) * 60_000)
        for (const f of feeds)
          for (const root of [f.root, path.join(dir, 'landing', f.name), path.join(dir, 'archive', f.name)])
            await rm(path.join(root, old), { recursive: true, force: true });
    }
    second++;
    if (Date.now() >= nextSample) {
      nextSample += sampleMs;
      const s = await sample(daemon, httpPort, probeDir, started);
      if (s) {
        samples.push(s);
        console.log(
          `  ${(s.realS / 60).toFixed(1)} min: rss ${s.rssMb.toFixed(0)} MB (anon ${s.anonMb.toFixed(0)}), heap ${s.heapMb.toFixed(0)} MB (all isolates ${s.heapAllMb.toFixed(0)}), external ${s.externalMb.toFixed(1)} MB, arenas ${s.mallocArenas}, fds ${s.fds}, inotify ${s.inotifyWatches}, FSWatchers ${s.fsWatchers}, threads ${s.threads}, ledger ${s.fileRows} rows, fetched ${s.fetched}/${written}`,
        );
      }
    }
    const wait = started + second * 1000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  // Let the daemon take the last files, then stop it.
  const drainDeadline = Date.now() + 90_000;
  let fetched = 0;
  while (Date.now() < drainDeadline && daemon.exitCode === null) {
    fetched = await fetchedTotal(httpPort);
    if (fetched >= written) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const exitedEarly = daemon.exitCode !== null;
  daemon.kill('SIGTERM');
  if (daemon.exitCode === null) await new Promise((r) => daemon.once('close', r));
  for (const c of cleanups) await c().catch(() => undefined);

  const summary = report(samples, { written, fetched, minutes, exitedEarly });
  const label = process.env['SOAK_LABEL'];
  const file = await writeResult(REPO_ROOT, label ? `soak-${label}` : 'soak', {
    date: new Date().toISOString(),
    cli,
    host: { cpus: os.cpus().length, loadAverageAtEnd: os.loadavg() },
    knobs: { minutes, rate, fileBytes, maxAgeS, keepMin, sampleMs, nodeOptions, sources: feeds.map((f) => f.name) },
    written,
    fetched,
    summary,
    samples,
  });
  await writeFile(file.replace(/\.json$/, '.md'), `${summary.markdown}\n`);
  console.log(`\nresults: ${path.relative(process.cwd(), file)} (and .md)`);
  if (process.env['SOAK_KEEP'] === '1') console.log(`kept ${dir} (daemon.log, ledger.db, probe/)`);
  else await rm(dir, { recursive: true, force: true });
  if (exitedEarly || fetched < written) process.exitCode = 1;
}

async function fetchedTotal(httpPort: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    let sum = 0;
    for (const m of text.matchAll(/^poller_files_fetched_total\{[^}]*\} (\S+)/gm)) sum += Number(m[1]);
    return sum;
  } catch {
    return 0;
  }
}

/** The daemon and its descendants (plugin hosts run as child processes when so configured). */
async function processTree(pid: number): Promise<number[]> {
  const out = [pid];
  for (let i = 0; i < out.length && i < 64; i++) {
    const tasks = await readdir(`/proc/${out[i]}/task`).catch(() => [] as string[]);
    for (const t of tasks) {
      const children = await readFile(`/proc/${out[i]}/task/${t}/children`, 'utf8').catch(() => '');
      for (const c of children.split(/\s+/).filter(Boolean)) out.push(Number(c));
    }
  }
  return out;
}

/** glibc malloc arenas besides the main one: 64 MiB reservations (a rw part and its ---p rest). */
function countArenas(maps: string): number {
  const lines = maps.split('\n');
  let arenas = 0;
  for (let i = 0; i < lines.length - 1; i++) {
    const a = /^([0-9a-f]+)-([0-9a-f]+) rw-p 00000000 00:00 0\s*$/.exec(lines[i] as string);
    const b = /^([0-9a-f]+)-([0-9a-f]+) ---p 00000000 00:00 0\s*$/.exec(lines[i + 1] as string);
    if (!a || !b || a[2] !== b[1]) continue;
    const size = Number.parseInt(b[2] as string, 16) - Number.parseInt(a[1] as string, 16);
    if (size === 64 * 1024 * 1024) arenas++;
  }
  return arenas;
}

async function inotifyWatches(pid: number): Promise<{ fds: number; watches: number }> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  let watches = 0;
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (target !== 'anon_inode:inotify') continue;
    const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
    watches += info.split('\n').filter((l) => l.startsWith('inotify wd:')).length;
  }
  return { fds: fds.length, watches };
}

/** The newest line of every isolate's probe file of the live processes. */
async function isolates(probeDir: string, pids: number[]): Promise<IsolateSample[]> {
  const out: IsolateSample[] = [];
  for (const name of await readdir(probeDir).catch(() => [] as string[])) {
    const pid = Number(name.split('-')[0]);
    if (!pids.includes(pid)) continue;
    const text = await readFile(path.join(probeDir, name), 'utf8').catch(() => '');
    const last = text.trimEnd().split('\n').pop();
    if (!last) continue;
    try {
      const r = JSON.parse(last) as Record<string, number> & { resources: Record<string, number> };
      // A thread that ended (a restarted host) stops writing: only recent lines count.
      if (Date.now() - (r['t'] ?? 0) > 2 * num('SOAK_SAMPLE_S', 30) * 1000) continue;
      const mb = (k: string) => (r[k] ?? 0) / 1_048_576;
      out.push({
        pid,
        threadId: r['threadId'] ?? 0,
        heapUsedMb: mb('heapUsed'),
        heapTotalMb: mb('heapTotal'),
        externalMb: mb('external'),
        arrayBuffersMb: mb('arrayBuffers'),
        mallocedMb: mb('malloced'),
        resources: r.resources,
      });
    } catch {
      // A line cut mid-write: the next sample has it.
    }
  }
  return out;
}

async function sample(
  daemon: ChildProcess,
  httpPort: number,
  probeDir: string,
  started: number,
): Promise<Sample | undefined> {
  try {
    const pid = daemon.pid as number;
    const pids = await processTree(pid);
    let rssKb = 0;
    let anonKb = 0;
    let threads = 0;
    let arenas = 0;
    let fds = 0;
    let watches = 0;
    for (const p of pids) {
      const status = await readFile(`/proc/${p}/status`, 'utf8').catch(() => '');
      rssKb += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      anonKb += Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? 0);
      threads += Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? 0);
      arenas += countArenas(await readFile(`/proc/${p}/maps`, 'utf8').catch(() => ''));
      const w = await inotifyWatches(p);
      fds += w.fds;
      watches += w.watches;
    }
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const metric = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? Number.NaN);
    let fetched = 0;
    for (const m of metrics.matchAll(/^poller_files_fetched_total\{[^}]*\} (\S+)/gm)) fetched += Number(m[1]);
    const per = await isolates(probeDir, pids);
    const main = per.find((i) => i.pid === pid && i.threadId === 0);
    const sum = (k: keyof IsolateSample) => per.reduce((a, i) => a + (i[k] as number), 0);
    return {
      realS: (Date.now() - started) / 1000,
      rssMb: rssKb / 1024,
      anonMb: anonKb / 1024,
      heapMb: main?.heapUsedMb ?? metric(/^poller_nodejs_heap_size_used_bytes (\S+)/m) / 1_048_576,
      heapAllMb: sum('heapUsedMb'),
      // memoryUsage().external and arrayBuffers are per isolate: their sum is the process's.
      externalMb: sum('externalMb'),
      arrayBuffersMb: sum('arrayBuffersMb'),
      isolates: per.length,
      mallocArenas: arenas,
      fds,
      inotifyWatches: watches,
      fsWatchers: main?.resources['FSEventWrap'] ?? 0,
      threads,
      processes: pids.length,
      fileRows: metric(/^poller_ledger_rows\{table="files"\} (\S+)/m),
      runRows: metric(/^poller_ledger_rows\{table="plugin_runs"\} (\S+)/m),
      fetched,
      perIsolate: per,
    };
  } catch {
    return undefined;
  }
}

/** Least-squares slope of y over x. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let numer = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    numer += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den === 0 ? 0 : numer / den;
}

interface SoakSummary {
  peakRssMb: number;
  rssSlopePctPerHour: number;
  rows: Array<{ measure: string; mean: number; min: number; max: number; slopePerHour: number; pctPerHour: number }>;
  markdown: string;
}

function report(
  samples: Sample[],
  run: { written: number; fetched: number; minutes: number; exitedEarly: boolean },
): SoakSummary {
  const lines: string[] = [];
  const half = samples.slice(Math.floor(samples.length / 2));
  const peakRssMb = Math.max(...samples.map((s) => s.rssMb));
  const rows: SoakSummary['rows'] = [];
  if (half.length >= 3) {
    const x = half.map((s) => s.realS / 3600);
    const measures: Array<[string, keyof Sample, string]> = [
      ['RSS', 'rssMb', 'MB'],
      ['anonymous RSS', 'anonMb', 'MB'],
      ['V8 heap used, main thread', 'heapMb', 'MB'],
      ['V8 heap used, all isolates', 'heapAllMb', 'MB'],
      ['external memory, all isolates', 'externalMb', 'MB'],
      ['array buffers, all isolates', 'arrayBuffersMb', 'MB'],
      ['malloc arenas', 'mallocArenas', ''],
      ['open descriptors', 'fds', ''],
      ['inotify watches', 'inotifyWatches', ''],
      ['FSWatcher handles', 'fsWatchers', ''],
      ['threads', 'threads', ''],
      ['ledger file rows', 'fileRows', ''],
      ['ledger plugin-run rows', 'runRows', ''],
    ];
    lines.push('| measure (second half) | mean | min | max | slope per hour | % of mean per hour |');
    lines.push('|---|---|---|---|---|---|');
    for (const [label, key, unit] of measures) {
      const ys = half.map((s) => s[key] as number);
      if (!ys.every(Number.isFinite)) continue;
      const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
      const k = slope(x, ys);
      const pct = mean === 0 ? 0 : (100 * k) / mean;
      rows.push({ measure: label, mean, min: Math.min(...ys), max: Math.max(...ys), slopePerHour: k, pctPerHour: pct });
      const fmt = (v: number) => `${v.toFixed(unit === 'MB' ? 1 : 0)}${unit ? ` ${unit}` : ''}`;
      lines.push(
        `| ${label} | ${fmt(mean)} | ${fmt(Math.min(...ys))} | ${fmt(Math.max(...ys))} | ${k.toFixed(unit === 'MB' ? 2 : 0)} | ${pct.toFixed(2)} % |`,
      );
    }
  } else lines.push('soak: too few samples for slopes; run longer');
  const rss = rows.find((r) => r.measure === 'RSS');
  const rssSlopePctPerHour = rss?.pctPerHour ?? Number.NaN;
  lines.push('');
  lines.push('| minute | RSS MB | anon MB | heap (all) MB | external MB | inotify watches | ledger rows |');
  lines.push('|---|---|---|---|---|---|---|');
  const step = Math.max(1, Math.floor(samples.length / 12));
  for (let i = 0; i < samples.length; i += step) {
    const s = samples[i] as Sample;
    lines.push(
      `| ${(s.realS / 60).toFixed(1)} | ${s.rssMb.toFixed(0)} | ${s.anonMb.toFixed(0)} | ${s.heapAllMb.toFixed(0)} | ${s.externalMb.toFixed(1)} | ${s.inotifyWatches} | ${s.fileRows} |`,
    );
  }
  lines.push('');
  lines.push(
    `files written ${run.written}, fetched ${run.fetched}${run.exitedEarly ? '; the daemon EXITED before the end' : ''}`,
  );
  lines.push(
    `- RSS slope over the second half below 2 %/hour: ${rssSlopePctPerHour.toFixed(2)} %/hour (${rssSlopePctPerHour < 2 ? 'met' : 'MISSED'})`,
  );
  lines.push(`- peak RSS <= 150 MB: ${peakRssMb.toFixed(0)} MB (${peakRssMb <= 150 ? 'met' : 'MISSED'})`);
  const markdown = lines.join('\n');
  console.log(`\n${markdown}`);
  return { peakRssMb, rssSlopePctPerHour, rows, markdown };
}
