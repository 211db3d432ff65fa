/**
 * A kill -9 storm: `poller run-once` killed at random moments (startup, listing, mid-transfer,
 * mid-plugin) and, through the test hook, between the rename into place and the ledger commit,
 * at least 50 times against a feed that keeps changing. Then one clean run, and the invariants:
 * nothing lost, nothing fetched twice, no partial file handed to a plugin, ledger consistent.
 */
import { readFileSync, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { FileRecord } from '../../src/ledger/ledger.js';
import { SqliteLedger } from '../../src/ledger/sqlite/sqlite-ledger.js';
import { type EngineEnv, FIXTURE_PLUGINS, startEngineEnv } from '../helpers/engine-env.js';
import { countBy, readRecords, sha256 } from '../helpers/records.js';
import { waitFor } from '../helpers/wait-for.js';

const KILLS = 50;
/** Every this-many runs, the kill comes from the after-rename hook instead of a timer. */
const HOOK_EVERY = 5;

let env: EngineEnv | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

/** mulberry32: a small seeded generator, so a failing storm can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function rows(env: EngineEnv): Promise<FileRecord[]> {
  const ledger = new SqliteLedger(env.ledgerPath);
  try {
    return await ledger.files({ limit: 100_000 });
  } finally {
    await ledger.close();
  }
}

/** The landed file is this exact version: renamed into place, the ledger commit not yet made. */
function landedAs(env: EngineEnv, r: FileRecord): boolean {
  try {
    const st = statSync(path.join(env.landing, 'radar', r.path));
    return st.size === r.sizeBytes && Math.abs(st.mtimeMs - r.mtimeMs) < 1000;
  } catch {
    return false;
  }
}

async function partials(env: EngineEnv): Promise<string[]> {
  try {
    return await readdir(path.join(env.landing, '.partial'));
  } catch {
    return [];
  }
}

it(`survives ${KILLS} kill -9 at random points of a changing feed`, { timeout: 150_000 }, async () => {
  const seed = Number(process.env['CHAOS_SEED'] ?? Date.now() % 1_000_000);
  const rand = prng(seed);
  env = await startEngineEnv({
    source: { concurrency: 3 },
    // The storm may kill the same file's plugin run again and again (18 of 50 kills land
    // mid-plugin); the crash-loop guard would quarantine it after maxAttempts crashed runs, by
    // design (tested in plugins.isolation). Here every file must come through: the most attempts.
    plugins: (_dir, log) => [
      {
        use: path.join(FIXTURE_PLUGINS, 'record.mjs'),
        options: { log, delayMs: 40 },
        concurrency: 2,
        maxAttempts: 100,
      },
    ],
  });
  const e = env;
  /** Every content each path has had: a plugin must only ever see one of them, whole. */
  const versions = new Map<string, Set<string>>();
  let fileNo = 0;
  let rewrites = 0;
  const hourAgo = Date.now() - 3_600_000;
  const addFile = async (): Promise<void> => {
    const n = fileNo++;
    // Mostly small files, some large enough for a kill to land mid-transfer.
    const size = n % 10 === 0 ? 3_000_000 + n : n % 4 === 0 ? 400_000 + n : 5_000 + n * 37;
    const name = `feed/${String(n).padStart(4, '0')}.bufr`;
    const bytes = Buffer.alloc(size, n % 251);
    bytes.writeUInt32BE(n, 0);
    await e.put(name, bytes, hourAgo + n * 1000);
    versions.set(name, new Set([sha256(bytes)]));
  };
  /**
   * A new version of a file: other size and mtime, other bytes. Also a file a kill left
   * half-fetched: its partial must not be resumed as the new version.
   */
  const rewrite = async (names: string[]): Promise<string | undefined> => {
    const name = names[Math.floor(rand() * names.length)];
    if (name === undefined) return undefined;
    rewrites++;
    const bytes = Buffer.alloc(20_000 + rewrites * 101, (rewrites * 7) % 251);
    bytes.write(`v${rewrites}`, 0);
    await e.put(name, bytes, hourAgo + 900_000 + rewrites * 1000);
    versions.get(name)?.add(sha256(bytes));
    return name;
  };
  for (let i = 0; i < 40; i++) await addFile();

  const kinds = new Map<string, number>();
  /** Per kill: paths caught mid-transfer (a RETR may have completed without a commit). */
  const inFlightAtKill = new Map<string, number>();
  /** Paths caught renamed into place but not committed: they must not be downloaded again. */
  const renamedAtKill = new Map<string, number>();
  const servedBefore = new Map<string, number>();
  /** Paths rewritten while a version of them was still uncommitted. */
  const superseded = new Map<string, number>();
  let kills = 0;
  let completedRuns = 0;
  let runMs = 1500;
  for (let run = 0; kills < KILLS && run < KILLS * 3; run++) {
    const byHook = run % HOOK_EVERY === HOOK_EVERY - 1;
    const runStartMs = Date.now();
    let killed: boolean;
    if (byHook) {
      const nth = 1 + Math.floor(rand() * 3);
      const r = await e.cli(['run-once'], { env: { POLLER_TEST_CRASH_AT: `after-rename:${nth}` } });
      killed = r.signal === 'SIGKILL';
    } else {
      const child = e.spawnCli(['run-once']);
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, s) => resolve(s)));
      // Somewhere inside a run: the window follows how long recent runs took to finish (a run
      // with little to do ends in well under half a second since start-up got faster).
      const delayMs = 150 + Math.floor(rand() * Math.max(300, runMs - 150));
      const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
      killed = (await exited) === 'SIGKILL';
      clearTimeout(timer);
    }
    if (!killed) {
      completedRuns++;
      runMs = Math.round((runMs + (Date.now() - runStartMs)) / 2);
    } else {
      kills++;
      const after = await rows(e);
      // Rows this run claimed (a row left by an earlier kill counts once, at that kill).
      const fetching = after.filter((r) => r.state === 'fetching' && r.updatedMs >= runStartMs);
      const point = (kind: string) => kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      if (byHook) point('after-rename hook');
      if (fetching.length > 0) point('mid-transfer');
      if (after.some((r) => r.state === 'processing' && r.updatedMs >= runStartMs)) point('mid-plugin');
      if (!byHook && fetching.length === 0 && !after.some((r) => r.updatedMs >= runStartMs)) point('startup/listing');
      for (const r of fetching) {
        const landed = landedAs(e, r);
        const map = landed ? renamedAtKill : inFlightAtKill;
        map.set(r.path, (map.get(r.path) ?? 0) + 1);
        if (landed)
          servedBefore.set(r.path, countBy(e.ftp.retrieved(), (p) => p).get(path.join(e.ftp.root, r.path)) ?? 0);
      }
    }
    // The feed moves on: new files, and now and then a new version of a processed one.
    await addFile();
    if (run % 7 === 6) {
      // Not a file landed but not yet processed: its landed copy would be replaced by the new
      // version before the plugins ran on the old one (see the known-issue test below).
      const now = await rows(e);
      const waiting = new Set(
        now
          .filter(
            (r) => r.state === 'fetched' || r.state === 'processing' || (r.state === 'failed' && r.stage === 'process'),
          )
          .map((r) => r.path),
      );
      const name = await rewrite([...versions.keys()].filter((n) => !waiting.has(n)));
      // A version not committed yet may have been downloaded whole by a killed run: that
      // download is lost to the new version, not a second fetch of one version.
      if (name !== undefined && now.some((r) => r.path === name && (r.state === 'seen' || r.state === 'fetching')))
        superseded.set(name, (superseded.get(name) ?? 0) + 1);
    }
  }
  expect(kills).toBe(KILLS);

  const final = await e.cli(['run-once', '--json']);
  expect(final.code, final.stderr).toBe(0);
  let checks = 0;
  const check = (ok: boolean, what: () => string): void => {
    expect(ok, `${what()} (CHAOS_SEED=${seed} replays this storm)`).toBe(true);
    checks++;
  };

  const ledgerRows = await rows(e);
  // Ledger consistent: no claim left behind.
  check(
    ledgerRows.every((r) => r.state !== 'fetching' && r.state !== 'processing'),
    () => 'rows left fetching/processing',
  );
  // Nothing lost: the current version of every server file is processed and landed byte-exact.
  const served = countBy(e.ftp.retrieved(), (p) => path.relative(e.ftp.root, p));
  for (const name of versions.keys()) {
    const remote = readFileSync(path.join(e.ftp.root, name));
    const current = ledgerRows.filter((r) => r.path === name).sort((a, b) => b.mtimeMs - a.mtimeMs)[0];
    check(current?.state === 'processed' && current.sizeBytes === remote.length, () => `${name}: ${current?.state}`);
    check(
      sha256(readFileSync(path.join(e.landing, 'radar', name))) === sha256(remote),
      () => `${name}: landed bytes differ`,
    );
    // Nothing fetched twice: one completed RETR per landed version, plus at most one per kill
    // that caught this path in flight (killed after the server sent the last byte, before the commit).
    const landedVersions = ledgerRows.filter((r) => r.path === name && r.localPath !== null).length;
    const retr = served.get(name) ?? 0;
    const allowed = (inFlightAtKill.get(name) ?? 0) + (superseded.get(name) ?? 0);
    check(
      retr >= 1 && retr <= landedVersions + allowed,
      () =>
        `${name}: ${retr} RETRs for ${landedVersions} versions, ${inFlightAtKill.get(name) ?? 0} kills in flight, ` +
        `${superseded.get(name) ?? 0} uncommitted versions replaced`,
    );
  }
  // A file caught between rename and commit is committed from the landed copy, not downloaded again
  // (unless a newer version of it came later).
  for (const [name, before] of servedBefore) {
    const later = ledgerRows.filter((r) => r.path === name && r.localPath !== null).length;
    const extra = (served.get(name) ?? 0) - before;
    check(
      extra <= later - 1 + (inFlightAtKill.get(name) ?? 0) + (superseded.get(name) ?? 0),
      () => `${name}: downloaded again after it was renamed into place`,
    );
  }
  // No partial file handed to a plugin: each run saw one whole version of its file.
  for (const r of readRecords(e.recordLog)) {
    check(versions.get(r.path)?.has(r.sha256) === true, () => `${r.path}: plugin saw bytes of no version`);
  }
  check((await partials(e)).length === 0, () => '.partial not empty');

  const refetched = [...served.values()].reduce((a, b) => a + b, 0) - ledgerRows.filter((r) => r.localPath).length;
  console.log(
    `chaos: ${kills} kills, ${checks} invariant checks passed (seed ${seed}; ${completedRuns} runs finished before their kill; ` +
      `kill points ${JSON.stringify(Object.fromEntries(kinds))}; ${versions.size} files, ${rewrites} rewritten; ` +
      `${renamedAtKill.size} files caught between rename and commit; ` +
      `${superseded.size} rewritten while uncommitted; ` +
      `${readRecords(e.recordLog).length} plugin runs; ${refetched} RETRs repeated after a kill mid-transfer)`,
  );
});

it('a file rewritten after a kill mid-transfer lands as its new version, not the old partial plus the new tail', async () => {
  env = await startEngineEnv({ ftp: { faults: { stallDataAfterBytes: 200_000, stallTimes: 1 } } });
  const e = env;
  // Larger than what lands through memory (1 MiB): this one streams to a partial on disk.
  await e.put('a.bufr', Buffer.alloc(2_000_000, 1));
  const child = e.spawnCli(['run-once']);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const partialDir = path.join(e.landing, '.partial');
  // The transfer stalls after 200,000 bytes: kill it there.
  await waitFor(
    async () => {
      const [name] = await partials(e);
      return name !== undefined && (await stat(path.join(partialDir, name))).size >= 200_000;
    },
    { timeoutMs: 20_000, what: 'a stalled partial' },
  );
  child.kill('SIGKILL');
  await exited;
  // The file changes before the restart: same row, new version.
  const fresh = Buffer.alloc(500_000, 2);
  await e.put('a.bufr', fresh, Date.now() - 1_800_000);
  const r = await e.cli(['run-once', '--json']);
  expect(r.code, r.stderr).toBe(0);
  expect(sha256(readFileSync(path.join(e.landing, 'radar', 'a.bufr')))).toBe(sha256(fresh));
  expect(readRecords(e.recordLog).map((x) => x.sha256)).toEqual([sha256(fresh)]);
  expect(await partials(e)).toEqual([]);
});

// The landing path is shared by the versions of a file. When a version is fetched but its plugins
// have not run yet (a crash, a plugin retry pending) and the file changes, the next cycle lands
// the new version over it: the old version is then 'superseded' (never processed with bytes that
// are not its own) and the new one is processed.
it('a version superseded before its plugins ran is not processed with the newer bytes', async () => {
  env = await startEngineEnv({
    plugins: (_dir, log) => [{ use: path.join(FIXTURE_PLUGINS, 'record.mjs'), options: { log, delayMs: 3000 } }],
  });
  const e = env;
  const first = Buffer.alloc(10_000, 1);
  await e.put('a.bufr', first);
  // The first version lands; the run is killed while its plugin works on it.
  const child = e.spawnCli(['run-once']);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await waitFor(async () => (await rows(e)).some((r) => r.state === 'processing'), {
    timeoutMs: 20_000,
    what: 'the plugin running',
  });
  child.kill('SIGKILL');
  await exited;
  // The file changes before the restart.
  const second = Buffer.alloc(20_000, 2);
  await e.put('a.bufr', second, Date.now() - 1_800_000);
  await e.cli(['run-once', '--json']);
  // No plugin run saw bytes of another version: the first is superseded, the second processed.
  expect(readRecords(e.recordLog).map((r) => r.sha256)).toEqual([sha256(second)]);
  const history = await e.ledger().history('radar', 'a.bufr');
  expect(history.map((h) => h.state)).toEqual(['processed', 'superseded']);
});
