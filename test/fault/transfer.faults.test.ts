/**
 * Transfer faults through the whole engine (`poller run-once` as a child process): the server
 * cuts the data connection, drops the control connection mid-transfer, answers 421, stalls.
 * Each time the cycle ends, every file lands byte-exact, and the retries are counted.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { type EngineEnv, startEngineEnv } from '../helpers/engine-env.js';
import { type GateProxy, startGateProxy } from '../helpers/fake-ftp-server.js';
import { countBy, readRecords, sha256 } from '../helpers/records.js';
import { type SftpTestServer, startSftpServer } from '../helpers/sftp-server.js';
import { waitFor } from '../helpers/wait-for.js';

let env: EngineEnv | undefined;
let proxy: GateProxy | undefined;
let sftp: SftpTestServer | undefined;
afterEach(async () => {
  await sftp?.close();
  sftp = undefined;
  await proxy?.close();
  proxy = undefined;
  await env?.close();
  env = undefined;
});

async function putFiles(e: EngineEnv, count: number, sizeBytes: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `vol/${i}.bufr`);
  for (const n of names) await e.put(n, randomBytes(sizeBytes));
  return names;
}

function events(stderr: string, event: string): number {
  return stderr.split('\n').filter((l) => l.includes(`"event":"${event}"`)).length;
}

/** Every file processed once and landed with the server's exact bytes; nothing left partial. */
async function expectAllLanded(e: EngineEnv, names: string[]): Promise<void> {
  const rows = await e.ledger().files({ limit: 1000 });
  expect(
    rows
      .filter((r) => r.state === 'processed')
      .map((r) => r.path)
      .sort(),
  ).toEqual([...names].sort());
  for (const n of names) {
    expect(sha256(readFileSync(path.join(e.landing, 'radar', n))), n).toBe(
      sha256(readFileSync(path.join(e.ftp.root, n))),
    );
  }
  const records = readRecords(e.recordLog);
  expect(records).toHaveLength(names.length);
  for (const r of records) expect(r.sha256).toBe(sha256(readFileSync(path.join(e.ftp.root, r.path))));
  expect(await readdir(path.join(e.landing, '.partial'))).toEqual([]);
}

/** An engine env whose source is the in-process SFTP server (the env's password is the server's). */
async function sftpEnv(server: SftpTestServer, source: Record<string, unknown> = {}): Promise<EngineEnv> {
  const e = await startEngineEnv({ ftp: { password: server.password } });
  const config = JSON.parse(await readFile(e.configPath, 'utf8')) as { sources: Array<Record<string, unknown>> };
  config.sources[0] = {
    name: 'radar',
    url: `sftp://${server.user}@127.0.0.1:${server.port}/`,
    password: '${TEST_FTP_PASSWORD}',
    hostKey: server.hostKeyFingerprint,
    include: ['**/*.bufr'],
    settleDelay: '100ms',
    ...source,
  };
  await writeFile(e.configPath, JSON.stringify(config));
  return e;
}

async function putSftp(server: SftpTestServer, count: number, sizeBytes: number): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `s${i}.bufr`);
  for (const n of names) await writeFile(path.join(server.root, n), randomBytes(sizeBytes));
  return names;
}

/** Like expectAllLanded, against the SFTP server's files. */
async function expectAllLandedFrom(e: EngineEnv, root: string, names: string[]): Promise<void> {
  const rows = await e.ledger().files({ limit: 1000 });
  expect(
    rows
      .filter((r) => r.state === 'processed')
      .map((r) => r.path)
      .sort(),
  ).toEqual([...names].sort());
  for (const n of names) {
    expect(sha256(readFileSync(path.join(e.landing, 'radar', n))), n).toBe(sha256(readFileSync(path.join(root, n))));
  }
  for (const r of readRecords(e.recordLog)) expect(r.sha256).toBe(sha256(readFileSync(path.join(root, r.path))));
  expect(await readdir(path.join(e.landing, '.partial'))).toEqual([]);
}

it('SFTP: the connection cut mid-transfer, then a stalled one: resumed, cycle ends, files byte-exact', async () => {
  sftp = await startSftpServer();
  const names = await putSftp(sftp, 3, 3_000_000);
  env = await sftpEnv(sftp, { dataTimeout: '1s', concurrency: 1 });
  sftp.dropAfterBytes(1_000_000);
  const dropped = await env.cli(['run-once', '--json', '--log-level', 'info']);
  expect(dropped.code, dropped.stderr).toBe(0);
  await expectAllLandedFrom(env, sftp.root, names);
  const dropRetries = events(dropped.stderr, 'file.retried');
  expect(dropRetries).toBeGreaterThanOrEqual(1);
  const resumed = dropped.stderr.split('\n').filter((l) => l.includes('"resumedFrom"')).length;
  const bytesAfterDrop = sftp.bytesRead;

  const more = ['m0.bufr', 'm1.bufr'];
  for (const n of more) await writeFile(path.join(sftp.root, n), randomBytes(2_000_000));
  sftp.stallAfterBytes(500_000);
  const stalled = await env.cli(['run-once', '--json', '--log-level', 'info']);
  expect(stalled.code, stalled.stderr).toBe(0);
  const stallRetries = events(stalled.stderr, 'file.retried');
  expect(stallRetries).toBeGreaterThanOrEqual(1);
  const all = [...names, ...more];
  await expectAllLandedFrom(env, sftp.root, all);
  console.log(
    `transfer.faults sftp: drop -> ${dropRetries} retries (${resumed} fetches resumed), ` +
      `${bytesAfterDrop} bytes served for ${names.length * 3_000_000}; stall (1 s timeout) -> ${stallRetries} retries; ` +
      `${all.length} files byte-exact`,
  );
});

function retrCount(e: EngineEnv): number {
  return e.ftp.retrieved().length;
}

it('data connection reset mid-transfer: resumed, cycle ends, files byte-exact', async () => {
  // A reset data connection can also leave the server's control connection waiting for good
  // (ftp-srv never sends the 426): the client then sees a control-socket timeout, not the reset.
  env = await startEngineEnv({
    ftp: { faults: { dropDataAfterBytes: 300_000, dropTimes: 3 } },
    source: { dataTimeout: '3s' },
  });
  const names = await putFiles(env, 4, 1_000_000);
  const r = await env.cli(['run-once', '--json']);
  expect(r.code, r.stderr).toBe(0);
  await expectAllLanded(env, names);
  // Transfers that start together may all be cut before the count is reached: at least 3.
  expect(env.ftp.droppedTransfers()).toBeGreaterThanOrEqual(3);
  const retried = events(r.stderr, 'file.retried');
  expect(retried).toBe(env.ftp.droppedTransfers());
  const timeouts = r.stderr.split('\n').filter((l) => l.includes('"POLLER_FTP_TIMEOUT"')).length;
  console.log(
    `transfer.faults data-drop: ${names.length} files, ${env.ftp.droppedTransfers()} data connections reset, ` +
      `${retried} retries (${retried - timeouts} saw the reset, ${timeouts} a control timeout), ` +
      `${retrCount(env)} completed RETRs, all byte-exact`,
  );
});

it('control connection dropped mid-transfer: retried with resume, cycle ends, files byte-exact', async () => {
  env = await startEngineEnv({ source: { concurrency: 2, dataTimeout: '2s' } });
  const names = await putFiles(env, 3, 12_000_000);
  const e = env;
  const child = e.spawnCli(['run-once', '--json', '--log-level', 'info']);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Cut every control connection while a transfer is under way.
  const partialDir = path.join(e.landing, '.partial');
  await waitFor(
    async () => {
      for (const f of await readdir(partialDir)) if ((await stat(path.join(partialDir, f))).size > 0) return true;
      return false;
    },
    { timeoutMs: 20_000, intervalMs: 5, what: 'a transfer under way' },
  );
  const openBefore = e.ftp.openConnections();
  await e.ftp.dropControlConnections();
  expect(await exited, stderr).toBe(0);
  await expectAllLanded(e, names);
  const retried = events(stderr, 'file.retried');
  const resumed = stderr.split('\n').filter((l) => l.includes('"resumedFrom"')).length;
  const served = countBy(e.ftp.retrieved(), (p) => p);
  console.log(
    `transfer.faults control-drop: ${openBefore} control connections cut mid-transfer, ${retried} retries ` +
      `(${resumed} fetches logged with a resume offset), ${retrCount(e)} completed RETRs for ${names.length} files ` +
      `(max ${Math.max(...served.values())} per file), all byte-exact`,
  );
});

it('421 too many connections: throttled, not failed; cycle ends, files byte-exact', async () => {
  env = await startEngineEnv({ source: { concurrency: 3 } });
  const names = await putFiles(env, 6, 200_000);
  // The server refuses the first connections and any beyond two at a time.
  proxy = await startGateProxy(env.ftp.port, (connection, open) => connection <= 2 || open >= 2);
  const config = JSON.parse(await readFile(env.configPath, 'utf8')) as { sources: Array<{ url: string }> };
  const src = config.sources[0];
  if (!src) throw new Error('no source in the test config');
  src.url = `ftp://${env.ftp.user}@127.0.0.1:${proxy.port}/`;
  await writeFile(env.configPath, JSON.stringify(config));
  const r = await env.cli(['run-once', '--json']);
  expect(r.code, r.stderr).toBe(0);
  await expectAllLanded(env, names);
  expect(proxy.refused()).toBeGreaterThanOrEqual(2);
  const failedLines = events(r.stderr, 'file.fetch_failed') + events(r.stderr, 'file.quarantined');
  expect(failedLines).toBe(0);
  const rows = await env.ledger().files({ limit: 100 });
  expect(rows.every((row) => row.fetchAttempts === 1)).toBe(true);
  console.log(
    `transfer.faults 421: ${proxy.refused()} connections refused with 421, ` +
      `${events(r.stderr, 'source.throttled')} throttle log lines, ${events(r.stderr, 'file.retried')} file retries, ` +
      `0 failed; ${names.length} files byte-exact`,
  );
});

it('a stalled data transfer times out and is resumed; cycle ends, files byte-exact', async () => {
  env = await startEngineEnv({
    ftp: { faults: { stallDataAfterBytes: 100_000, stallTimes: 2 } },
    source: { concurrency: 1, dataTimeout: '1s' },
  });
  const names = await putFiles(env, 2, 500_000);
  const r = await env.cli(['run-once', '--json']);
  expect(r.code, r.stderr).toBe(0);
  await expectAllLanded(env, names);
  expect(env.ftp.stalledTransfers()).toBe(2);
  const retried = events(r.stderr, 'file.retried');
  expect(retried).toBe(2);
  const summary = JSON.parse(r.stdout) as { durationMs: number };
  console.log(
    `transfer.faults stall: ${env.ftp.stalledTransfers()} transfers stalled (1 s data timeout), ${retried} retries, ` +
      `cycle ended in ${summary.durationMs} ms, ${names.length} files byte-exact`,
  );
});
