/**
 * SFTP download throughput: poller's SFTP source against OpenSSH's own `sftp -b`, both pulling
 * the same file from a real sshd on 127.0.0.1 into files on disk, in the same run; plus the
 * source against the in-process ssh2 test server. Prints MB/s (10^6 bytes per second, wall
 * time including connection set-up) and the ratio.
 *
 * Client CPU seconds per GB are printed too: on a shared machine they vary less than MB/s.
 * Needs GNU time (/usr/bin/time, Debian package `time`) for the sftp client's CPU.
 *
 * Usage: node dist/bench/sftp-throughput.js [--size-mib 256] [--runs 3] [--chunk-kib 128] [--in-flight 64]
 * Needs /usr/sbin/sshd and root (or passwordless sudo), like the real-sshd tests.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import pino from 'pino';
import { createSftpSource } from '../src/sources/sftp/sftp-source.js';
import type { SourceConnectOptions } from '../src/sources/source.js';
import { type SftpTestServer, startSftpServer } from '../test/helpers/sftp-server.js';
import { type SshdServer, sshdAvailability, startSshd } from '../test/helpers/sshd.js';

const run = promisify(execFile);

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : Number.NaN;
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

const sizeBytes = option('size-mib', 256) * 1024 * 1024;
const runs = option('runs', 3);
const chunkBytes = option('chunk-kib', 128) * 1024;
const readsInFlight = option('in-flight', 64);

async function writeRandomFile(file: string, bytes: number): Promise<void> {
  const out = createWriteStream(file);
  const block = randomBytes(1024 * 1024);
  for (let written = 0; written < bytes; written += block.length) {
    if (!out.write(block.subarray(0, Math.min(block.length, bytes - written)))) {
      await new Promise<void>((r) => out.once('drain', () => r()));
    }
  }
  out.end();
  await finished(out);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

interface Sample {
  wallS: number;
  /** CPU seconds (user + system) of the client side of the download. */
  cpuS: number;
}

/** Times `work`; its CPU is this process's own unless `work` reports a child's. */
async function timeIt(work: () => Promise<number | undefined>): Promise<Sample> {
  const start = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const childCpuS = await work();
  const cpu = process.cpuUsage(cpu0);
  return {
    wallS: Number(process.hrtime.bigint() - start) / 1e9,
    cpuS: childCpuS ?? (cpu.user + cpu.system) / 1e6,
  };
}

const mbps = (seconds: number): number => sizeBytes / 1e6 / seconds;

async function pollerDownload(opts: SourceConnectOptions, remote: string, dest: string): Promise<undefined> {
  const source = createSftpSource(opts, { readChunkBytes: chunkBytes, readsInFlight });
  try {
    const out = createWriteStream(dest);
    await source.download(remote, out, { offsetBytes: 0, signal: new AbortController().signal });
    out.end();
    await finished(out);
  } finally {
    await source.close();
  }
  const { size } = await fs.stat(dest);
  if (size !== sizeBytes) throw new Error(`downloaded ${size} bytes, expected ${sizeBytes}`);
  return undefined;
}

function baseOptions(): Omit<SourceConnectOptions, 'port' | 'user' | 'rootPath'> {
  return {
    name: 'bench',
    protocol: 'sftp',
    host: '127.0.0.1',
    tls: { mode: 'none', insecure: false },
    timezone: 'UTC',
    maxConnections: 1,
    connectTimeoutMs: 20_000,
    dataTimeoutMs: 30_000,
    log: pino({ level: 'warn' }),
  };
}

async function benchInProcess(work: string): Promise<Sample[]> {
  const server: SftpTestServer = await startSftpServer();
  try {
    await writeRandomFile(path.join(server.root, 'big.bin'), sizeBytes);
    const opts = {
      ...baseOptions(),
      port: server.port,
      user: server.user,
      password: server.password,
      rootPath: '/',
      hostKey: server.hostKeyFingerprint,
    };
    const times: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      const dest = path.join(work, 'inprocess.bin');
      times.push(await timeIt(() => pollerDownload(opts, 'big.bin', dest)));
      await fs.rm(dest);
    }
    return times;
  } finally {
    await server.close();
  }
}

async function benchRealSshd(work: string): Promise<{ poller: Sample[]; openssh: Sample[] }> {
  const sshd: SshdServer = await startSshd();
  try {
    const remote = path.join(sshd.root, 'big.bin');
    await writeRandomFile(remote, sizeBytes);
    const opts = {
      ...baseOptions(),
      port: sshd.port,
      user: sshd.user,
      privateKey: sshd.privateKey,
      rootPath: sshd.root,
      knownHosts: sshd.knownHostsFile,
    };
    const batch = path.join(work, 'sftp.batch');
    const opensshDest = path.join(work, 'openssh.bin');
    await fs.writeFile(batch, `get ${remote} ${opensshDest}\n`);
    const poller: Sample[] = [];
    const openssh: Sample[] = [];
    // Interleaved, so both see the same page cache and machine load.
    for (let i = 0; i < runs; i++) {
      const dest = path.join(work, 'poller.bin');
      poller.push(await timeIt(() => pollerDownload(opts, 'big.bin', dest)));
      await fs.rm(dest);
      openssh.push(
        await timeIt(async () => {
          // GNU time reports the sftp client's own CPU (user and system seconds) on stderr.
          const { stderr } = await run('/usr/bin/time', [
            '-f',
            'cpu %U %S',
            'sftp',
            '-q',
            '-b',
            batch,
            '-i',
            sshd.privateKeyFile,
            '-P',
            String(sshd.port),
            '-o',
            `UserKnownHostsFile=${sshd.knownHostsFile}`,
            '-o',
            'StrictHostKeyChecking=yes',
            '-o',
            'BatchMode=yes',
            `${sshd.user}@127.0.0.1`,
          ]);
          const m = /cpu ([\d.]+) ([\d.]+)/.exec(stderr);
          return m ? Number(m[1]) + Number(m[2]) : Number.NaN;
        }),
      );
      const { size } = await fs.stat(opensshDest);
      if (size !== sizeBytes) throw new Error(`sftp downloaded ${size} bytes, expected ${sizeBytes}`);
      await fs.rm(opensshDest);
    }
    return { poller, openssh };
  } finally {
    await sshd.stop();
  }
}

async function main(): Promise<void> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'poller-bench-sftp-'));
  const fmt = (t: Sample[]): string => {
    const wall = t.map((x) => x.wallS);
    const cpuPerGb = median(t.map((x) => x.cpuS)) / (sizeBytes / 1e9);
    return `median ${mbps(median(wall)).toFixed(0)} MB/s (runs: ${wall.map((w) => mbps(w).toFixed(0)).join(', ')}), client CPU ${cpuPerGb.toFixed(2)} s/GB`;
  };
  try {
    console.log(
      `file ${sizeBytes / 1024 / 1024} MiB, ${runs} runs, reads of ${chunkBytes / 1024} KiB x ${readsInFlight} in flight`,
    );
    const inProcess = await benchInProcess(work);
    console.log(`poller  <- in-process ssh2 server: ${fmt(inProcess)}`);
    const availability = sshdAvailability();
    if (!availability.available) {
      console.log(`real sshd skipped: ${availability.reason}`);
      return;
    }
    const { poller, openssh } = await benchRealSshd(work);
    console.log(`poller  <- OpenSSH sshd:           ${fmt(poller)}`);
    console.log(`sftp -b <- OpenSSH sshd:           ${fmt(openssh)}`);
    console.log(
      `ratio poller / OpenSSH sftp (median MB/s): ${(median(openssh.map((x) => x.wallS)) / median(poller.map((x) => x.wallS))).toFixed(2)}`,
    );
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
