/**
 * A landing writer thread: writes one small file that arrived in memory to its partial, sets its
 * mtime, fsyncs it and renames it into place, all with synchronous calls in this thread; or
 * fsyncs a directory. The main thread sends one message per job and gets one answer, instead of
 * a thread-pool round trip per open, write, fsync, close and rename, and never blocks on the
 * filesystem journal itself.
 */
import { closeSync, fsyncSync, futimesSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import type { WriteJob, WriteReply } from './landing-writer.js';

function withParentDir<T>(file: string, op: () => T): T {
  try {
    return op();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(path.dirname(file), { recursive: true });
    return op();
  }
}

function writeFile(job: Extract<WriteJob, { kind: 'land' }>): void {
  const fd = withParentDir(job.partial, () => openSync(job.partial, 'w'));
  try {
    for (let off = 0; off < job.sizeBytes; ) off += writeSync(fd, job.data, off, job.sizeBytes - off);
    const mtime = new Date(job.mtimeMs);
    futimesSync(fd, mtime, mtime);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

parentPort?.on('message', (job: WriteJob) => {
  let stage: WriteReply['stage'] = 'write';
  try {
    if (job.kind === 'syncdir') syncDir(job.dir);
    else {
      writeFile(job);
      stage = 'rename';
      withParentDir(job.localPath, () => renameSync(job.partial, job.localPath));
    }
    reply({ id: job.id }, job);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    reply(
      {
        id: job.id,
        stage,
        error: { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path },
      },
      job,
    );
  }
});

/** Answers a job, handing its buffer back to be reused (this thread would hold it till its own GC). */
function reply(r: WriteReply, job: WriteJob): void {
  if (job.kind === 'land') parentPort?.postMessage({ ...r, data: job.data }, [job.data.buffer as ArrayBuffer]);
  else parentPort?.postMessage(r);
}
