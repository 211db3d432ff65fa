/**
 * `npm run bench -- local-tree`: `poller run` on a local source over a large generated archive
 * tree, not a test. TREE_FILES files (default 1,000,000, empty) in hourly directories
 * `{YYYY}/{MM}/{DD}/{HH}` of TREE_PER_DIR files each, every file and directory dated its hour in
 * the past; the daemon watches the source with `maxAge` TREE_MAX_AGE_H hours for TREE_SECONDS
 * seconds, once with the date template in the URL and once on the plain root (the whole tree is
 * walked every cycle). Reported: inotify watches (from /proc), the directories the window holds,
 * peak RSS. Goal: watches <= the window's directories (+ their ancestors), RSS <= 200 MB.
 * TREE_DIR reuses a tree made before (it is kept then).
 */
import { spawn } from 'node:child_process';
import { closeSync, futimesSync, mkdirSync, openSync, utimesSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HOUR_MS = 3_600_000;
const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function hourDir(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCHours())}`;
}

/** The tree, newest hour last; synchronous calls: the fastest way to make a million inodes from Node. */
function generate(root: string, files: number, perDir: number): number {
  const dirs = Math.ceil(files / perDir);
  const nowHour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  let made = 0;
  for (let i = dirs - 1; i >= 0; i--) {
    const at = nowHour - i * HOUR_MS;
    const dir = path.join(root, hourDir(at));
    mkdirSync(dir, { recursive: true });
    const when = new Date(at + 60_000);
    for (let f = 0; f < perDir && made < files; f++, made++) {
      const fd = openSync(path.join(dir, `R${pad(f, 5)}.bufr`), 'w');
      futimesSync(fd, when, when);
      closeSync(fd);
    }
    // The hour, its day, month and year directories: dated by their newest content, as an
    // archive that has been filled over time is (mkdir just now touched them).
    for (let d = dir, k = 0; k < 4; d = path.dirname(d), k++) utimesSync(d, when, when);
  }
  return dirs;
}

async function inotifyWatches(pid: number): Promise<number> {
  let n = 0;
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) !== 'anon_inode:inotify') continue;
    const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
    n += info.split('\n').filter((l) => l.startsWith('inotify wd:')).length;
  }
  return n;
}

async function runDaemon(
  work: string,
  label: string,
  url: string,
  maxAgeH: number,
  seconds: number,
): Promise<{ label: string; watches: number; peakRssMb: number }> {
  const dir = path.join(work, label);
  const config = {
    landing: path.join(dir, 'landing'),
    ledger: path.join(dir, 'ledger.db'),
    log: { level: 'warn' },
    sources: [{ name: 'tree', url, every: '10s', maxAge: `${maxAgeH}h` }],
  };
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const configPath = path.join(dir, 'poller.json');
  await writeFile(configPath, JSON.stringify(config));
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'poller.js'), 'run', '--config', configPath], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let peakRssKb = 0;
  let watches = 0;
  const until = Date.now() + seconds * 1000;
  // Bounded: one sample a second for the run's length.
  while (Date.now() < until && child.exitCode === null) {
    await new Promise((r) => setTimeout(r, 1000));
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
    peakRssKb = Math.max(peakRssKb, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0));
    watches = Math.max(watches, await inotifyWatches(child.pid as number));
  }
  child.kill('SIGTERM');
  if (child.exitCode === null) await new Promise((r) => child.once('close', r));
  return { label, watches, peakRssMb: peakRssKb / 1024 };
}

export async function benchLocalTree(): Promise<void> {
  const files = num('TREE_FILES', 1_000_000);
  const perDir = num('TREE_PER_DIR', 1000);
  const maxAgeH = num('TREE_MAX_AGE_H', 3);
  const seconds = num('TREE_SECONDS', 90);
  const work = await mkdtemp(path.join(os.tmpdir(), 'poller-tree-'));
  const given = process.env['TREE_DIR'];
  const root = given ?? path.join(work, 'tree');
  let dirs = Math.ceil(files / perDir);
  if (!given) {
    const t0 = Date.now();
    dirs = generate(root, files, perDir);
    console.log(
      `local-tree: ${files} files in ${dirs} hourly directories, made in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
  }
  // Hourly directories the window touches (the current one included), plus the slack hour.
  const windowDirs = maxAgeH + 2;
  const results = [
    await runDaemon(work, 'templated', `file://${root}/{YYYY}/{MM}/{DD}/{HH}`, maxAgeH, seconds),
    await runDaemon(work, 'plain', `file://${root}`, maxAgeH, seconds),
  ];
  console.log(`\n| source url | inotify watches | hourly dirs in the window | peak RSS MB |`);
  console.log('|---|---|---|---|');
  for (const r of results)
    console.log(
      `| ${r.label === 'templated' ? '`file://<tree>/{YYYY}/{MM}/{DD}/{HH}`' : '`file://<tree>`'} | ${r.watches} | <= ${windowDirs} (of ${dirs}) | ${r.peakRssMb.toFixed(0)} |`,
    );
  for (const r of results)
    console.log(
      `- ${r.label}: RSS <= 200 MB: ${r.peakRssMb.toFixed(0)} MB (${r.peakRssMb <= 200 ? 'met' : 'MISSED'}); watches ${r.watches} (the window's ${windowDirs} directories + their ancestors)`,
    );
  await rm(work, { recursive: true, force: true });
}
