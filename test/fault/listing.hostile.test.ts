/**
 * Hostile listings from a scripted FTP server, through `poller run-once`: names that try to leave
 * the landing root, a listing of a million lines, LIST lines that lie about the size. Nothing
 * escapes the landing root, memory stays bounded, bad entries are recorded and skipped, and no
 * landed file is ever corrupt.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { type FakeFtpServer, startFakeFtpServer } from '../helpers/fake-ftp-server.js';
import { readRecords } from '../helpers/records.js';

let env: EngineEnv | undefined;
let fake: FakeFtpServer | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
  await env?.close();
  env = undefined;
});

const line = (name: string, size: number) => `-rw-r--r--   1 ftp  ftp  ${size} Nov 20  2025 ${name}`;

/** An engine env whose source points at the scripted server instead of ftp-srv. */
async function envOn(server: FakeFtpServer, source: Record<string, unknown> = {}): Promise<EngineEnv> {
  const e = await startEngineEnv({ source: { include: ['**'], ...source } });
  const config = JSON.parse(await readFile(e.configPath, 'utf8')) as { sources: Array<Record<string, unknown>> };
  const src = config.sources[0];
  if (!src) throw new Error('no source in the test config');
  src['url'] = `ftp://u@127.0.0.1:${server.port}/`;
  await writeFile(e.configPath, JSON.stringify(config));
  return e;
}

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile()) out.push(path.relative(dir, path.join(d.parentPath, d.name)));
  }
  return out.sort();
}

it('names with .., absolute paths, NUL, backslashes, control characters or 300 bytes are recorded and skipped', async () => {
  const hostile = [
    '..',
    '../escape.bufr',
    '../../etc/passwd',
    '/etc/shadow',
    'nul\0byte.bufr',
    'back\\..\\slash.bufr',
    'bell\x07.bufr',
    `${'L'.repeat(300)}.bufr`,
  ];
  const good = 'ok.bufr';
  fake = await startFakeFtpServer({
    listing: [...hostile.map((n) => line(n, 7)), line(good, 7), ''].join('\r\n'),
    files: { [good]: Buffer.from('payload') },
  });
  env = await envOn(fake);
  const r = await env.cli(['run-once', '--json']);
  const summary = JSON.parse(r.stdout) as { sources: Array<{ listed: number; rejected: number; fetched: number }> };
  const s = summary.sources[0];
  expect(s?.fetched, r.stderr).toBe(1);
  // Only the good file landed, inside the source's directory; nothing anywhere else in the env dir.
  expect(await filesUnder(path.join(env.landing, 'radar'))).toEqual([good]);
  const outside = (await filesUnder(env.dir)).filter(
    (f) => !/^landing\/radar\/ok\.bufr$|^ledger\.db|^poller\.yaml$|^record\.jsonl$/.test(f),
  );
  expect(outside).toEqual([]);
  expect(existsSync(path.join(env.dir, 'escape.bufr'))).toBe(false);
  // Each name the parser kept as an entry is recorded as rejected, with its reason; none was asked for.
  const rejected = await env.ledger().files({ state: 'rejected', limit: 100 });
  expect(rejected.length).toBe(s?.rejected);
  for (const row of rejected) expect(row.lastError).toMatch(/\.\.|absolute|NUL|backslash|control|longer than/);
  const retrs = fake.commands.filter((c) => c.startsWith('RETR'));
  expect(retrs).toEqual([`RETR /${good}`]);
  // The rest are recorded in the log by the LIST parser (a name with a slash or NUL is not a name);
  // `..` is the parent entry every LIST may show, skipped like `.`.
  const skippedNames = r.stderr
    .split('\n')
    .filter((l) => l.includes('"event":"listing.lines_skipped"'))
    .map((l) => (JSON.parse(l) as { name: string }).name);
  const recorded = new Set([...rejected.map((row) => row.path), ...skippedNames]);
  expect(hostile.filter((n) => n !== '..' && !recorded.has(n))).toEqual([]);
  const dropped = hostile.length - (s?.rejected ?? 0);
  console.log(
    `listing.hostile names: ${hostile.length} hostile names listed, ${s?.rejected} recorded as rejected, ` +
      `${dropped} skipped by the LIST parser (${skippedNames.length} with a log line, plus the parent entry ..), ${retrs.length} RETR (the good file), 0 files outside the landing root`,
  );
});

/** Runs `poller run-once` in a child with a small heap, sampling its peak RSS. */
async function runSmallHeap(
  e: EngineEnv,
  args: string[],
  heapMiB = 192,
): Promise<{ code: number | null; stdout: string; stderr: string; peakMiB: number }> {
  const child = e.spawnCli(args, { NODE_OPTIONS: `--max-old-space-size=${heapMiB}` });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let peakKb = 0;
  const sampler = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
    } catch {
      // The child is gone.
    }
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearInterval(sampler);
  return { code, stdout, stderr, peakMiB: Math.round(peakKb / 1024) };
}

function listingOf(count: number): string {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) lines.push(line(`f${String(i).padStart(7, '0')}.bufr`, 10));
  return lines.join('\r\n');
}

it('a LIST of 1,000,000 lines: memory stays bounded, the cycle ends with one clear error', async () => {
  const text = listingOf(1_000_000);
  fake = await startFakeFtpServer({ listing: text });
  env = await envOn(fake);
  // The poller runs with a small heap: an unbounded listing would crash it.
  const r = await runSmallHeap(env, ['run-once', '--json']);
  expect(r.code, r.stderr).toBe(1);
  const summary = JSON.parse(r.stdout) as { sources: Array<{ error?: { code: string; message: string } }> };
  const err = summary.sources[0]?.error;
  expect(err?.code).toBe('POLLER_FTP_LISTING_TOO_LARGE');
  expect(err?.message).toMatch(/narrow the include globs/);
  expect(r.stderr.split('\n').filter((l) => l.includes('"level":50'))).toHaveLength(1);
  expect(r.peakMiB).toBeGreaterThan(0);
  expect(r.peakMiB).toBeLessThan(400);
  expect(await filesUnder(path.join(env.landing, 'radar'))).toEqual([]);

  // Under the listing cap the entries are taken: 200,000 lines, listed and diffed. (About 1 KiB of
  // memory per entry: 400,000 lines peaked near 390 MiB RSS.)
  await fake.close();
  fake = await startFakeFtpServer({ listing: listingOf(200_000) });
  const config = JSON.parse(await readFile(env.configPath, 'utf8')) as { sources: Array<Record<string, unknown>> };
  (config.sources[0] as Record<string, unknown>)['url'] = `ftp://u@127.0.0.1:${fake.port}/`;
  await writeFile(env.configPath, JSON.stringify(config));
  const big = await runSmallHeap(env, ['run-once', '--json', '--dry-run'], 256);
  expect(big.code, big.stderr).toBe(0);
  const listed = (JSON.parse(big.stdout) as { sources: Array<{ listed: number }> }).sources[0]?.listed;
  expect(listed).toBe(200_000);
  expect(big.peakMiB).toBeLessThan(450);
  console.log(
    `listing.hostile 1M lines: ${(text.length / 1e6).toFixed(1)} MB LIST refused as ${err?.code} with 1 error line, ` +
      `child peak RSS ${r.peakMiB} MiB (heap capped at 192 MiB); 200k lines listed and diffed (dry run, 256 MiB heap), peak RSS ${big.peakMiB} MiB`,
  );
}, 120_000); // two big listings in child processes: CPU-bound, slow on a loaded machine

it('LIST lines that lie about the size: never a corrupt landed file, recorded and retried', async () => {
  const truth = Buffer.alloc(1500, 7);
  const short = Buffer.alloc(600, 9);
  fake = await startFakeFtpServer({
    listing: [line('bigger.bufr', 1000), line('smaller.bufr', 1000), line('honest.bufr', 1500), ''].join('\r\n'),
    files: { 'bigger.bufr': truth, 'smaller.bufr': short, 'honest.bufr': truth },
  });
  env = await envOn(fake);
  const r = await env.cli(['run-once', '--json', '--log-level', 'info']);
  expect(r.code).toBe(1);
  // Only the honest file landed; the plugin saw only it.
  expect(await filesUnder(path.join(env.landing, 'radar'))).toEqual(['honest.bufr']);
  expect(readRecords(env.recordLog).map((x) => x.path)).toEqual(['honest.bufr']);
  const rows = await env.ledger().files({ limit: 100 });
  const byPath = new Map(rows.map((row) => [row.path, row]));
  expect(byPath.get('honest.bufr')?.state).toBe('processed');
  // More bytes than listed: the file is taken as still changing, and waits to settle again.
  expect(byPath.get('bigger.bufr')?.state).toBe('seen');
  expect(r.stderr).toMatch(/"event":"file.changed".*bigger\.bufr|bigger\.bufr.*"event":"file.changed"/);
  // Fewer bytes than listed: the fetch fails as short (its partial is kept for a resume).
  expect(byPath.get('smaller.bufr')).toMatchObject({ state: 'failed', errorCode: 'POLLER_LANDING_SHORT' });
  const partialSizes = await Promise.all(
    (await readdir(path.join(env.landing, '.partial'))).map(
      async (f) => (await readFile(path.join(env?.landing ?? '', '.partial', f))).length,
    ),
  );
  for (const size of partialSizes) expect(size).toBeLessThanOrEqual(1000);
  const retrs = fake.commands.filter((c) => c.startsWith('RETR')).length;
  console.log(
    `listing.hostile lying sizes: bigger -> ${byPath.get('bigger.bufr')?.state} (file.changed), ` +
      `smaller -> ${byPath.get('smaller.bufr')?.state} ${byPath.get('smaller.bufr')?.errorCode}, ` +
      `honest -> processed; ${retrs} RETRs, partials ${JSON.stringify(partialSizes)} bytes, 0 corrupt landed files`,
  );
});
