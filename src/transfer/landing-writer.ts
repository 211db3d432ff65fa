/**
 * The landing writers: a few threads that land small files which arrived in memory, and fsync
 * directories (landing-writer-worker.ts). Started on first use, at most WRITERS of them, each
 * referenced only while it has work, so an idle writer never keeps the process alive. The file
 * buffers are reused: each goes to a writer and comes back, so a catch-up of many small files
 * allocates a few buffers, not one per file (less for the collector to chase).
 */
import { Worker } from 'node:worker_threads';
import { builtModuleUrl } from '../package-paths.js';

/**
 * Enough writers for fsyncs of several connections to overlap (an fsync takes a millisecond or
 * more on real disks), few enough to cost little memory (a thread each, a few MB).
 */
const WRITERS = 4;

/** V8 limits of a writer thread's isolate, in MB. */
const WRITER_HEAP_LIMITS = { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 };

/** Capacity of the largest landing buffer: the largest file landed through memory. */
export const BUFFER_BYTES = 1024 * 1024;

/** The smallest landing buffer: a 4 KiB file takes 16 KiB, not a whole BUFFER_BYTES. */
const MIN_BUFFER_BYTES = 16 * 1024;

/**
 * Bytes of free buffers kept for reuse (all sizes together); beyond it they are let go. Buffers
 * come in powers of two from MIN_BUFFER_BYTES to BUFFER_BYTES, so what is held follows the sizes
 * of the files in flight, not a megabyte for each.
 */
const MAX_FREE_BYTES = 8 * 1024 * 1024;

export type WriteJob =
  | { kind: 'land'; id: number; partial: string; localPath: string; mtimeMs: number; data: Buffer; sizeBytes: number }
  | { kind: 'syncdir'; id: number; dir: string };

export interface WriteReply {
  id: number;
  /** Set on failure: where it failed. `write` means the file is not known to be on disk. */
  stage?: 'write' | 'rename';
  error?: { message: string; code?: string; errno?: number; syscall?: string; path?: string };
  /** A landed file's buffer, handed back for reuse. */
  data?: Uint8Array;
}

/** A failure of a landing writer, with the errno fields of the fs call that failed. */
export type LandingWriteError = NodeJS.ErrnoException & { stage: 'write' | 'rename' };

interface Writer {
  worker: Worker;
  pending: Map<number, { resolve: () => void; reject: (err: Error) => void }>;
}

const writers: Writer[] = [];
/** Free buffers by capacity (a power of two). */
const freeBuffers = new Map<number, Buffer[]>();
let freeBytes = 0;
let nextId = 1;

/** The buffer size that holds `sizeBytes`: the next power of two within the two bounds. */
function capacityFor(sizeBytes: number): number {
  let c = MIN_BUFFER_BYTES;
  while (c < sizeBytes && c < BUFFER_BYTES) c *= 2;
  return c;
}

/**
 * A landing buffer for a file of `sizeBytes` (at most BUFFER_BYTES): give it back with
 * releaseBuffer unless a writer takes it.
 */
export function takeBuffer(sizeBytes = BUFFER_BYTES): Buffer {
  const capacity = capacityFor(sizeBytes);
  const buf = freeBuffers.get(capacity)?.pop();
  if (!buf) return Buffer.allocUnsafeSlow(capacity);
  freeBytes -= capacity;
  return buf;
}

export function releaseBuffer(buf: Buffer): void {
  const capacity = buf.byteLength;
  if (capacity !== capacityFor(capacity) || freeBytes + capacity > MAX_FREE_BYTES) return;
  const list = freeBuffers.get(capacity) ?? [];
  list.push(buf);
  freeBuffers.set(capacity, list);
  freeBytes += capacity;
}

function workerUrl(): URL {
  return new URL(builtModuleUrl('src/transfer/landing-writer-worker.js'));
}

function startWriter(): Writer {
  // A writer holds one job at a time (the file's bytes are a transferred buffer, outside its
  // heap): a small heap of its own, so its collector runs instead of letting garbage pile up
  // against the process's heap limit for hours.
  const worker = new Worker(workerUrl(), { resourceLimits: WRITER_HEAP_LIMITS });
  const w: Writer = { worker, pending: new Map() };
  worker.unref();
  worker.on('message', (reply: WriteReply) => {
    if (reply.data) releaseBuffer(Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength));
    const job = w.pending.get(reply.id);
    if (!job) return;
    w.pending.delete(reply.id);
    if (w.pending.size === 0) worker.unref();
    if (!reply.error) job.resolve();
    else job.reject(Object.assign(new Error(reply.error.message), reply.error, { stage: reply.stage ?? 'write' }));
  });
  const fail = (err: Error): void => {
    const i = writers.indexOf(w);
    if (i >= 0) writers.splice(i, 1);
    for (const job of w.pending.values()) job.reject(Object.assign(err, { stage: 'write' as const }));
    w.pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`a landing writer thread exited (code ${code})`)));
  writers.push(w);
  return w;
}

/** The idle writer, else a new one while under WRITERS, else the least busy. */
function pickWriter(): Writer {
  let best: Writer | undefined;
  for (const w of writers) {
    if (w.pending.size === 0) return w;
    if (!best || w.pending.size < best.pending.size) best = w;
  }
  return writers.length < WRITERS || !best ? startWriter() : best;
}

type JobBody = WriteJob extends infer J ? (J extends WriteJob ? Omit<J, 'id'> : never) : never;

function submit(body: JobBody): Promise<void> {
  const w = pickWriter();
  const id = nextId++;
  return new Promise<void>((resolve, reject) => {
    w.pending.set(id, { resolve, reject });
    w.worker.ref();
    if (body.kind === 'land') w.worker.postMessage({ ...body, id }, [body.data.buffer as ArrayBuffer]);
    else w.worker.postMessage({ ...body, id });
  });
}

/**
 * Writes the first `sizeBytes` of `data` (a buffer from takeBuffer, now the writer's) to
 * `partial`, sets the mtime, fsyncs, closes and renames to `localPath`, in one round trip.
 * Rejects with a LandingWriteError (`stage` says whether only the rename failed).
 */
export function writeAndRename(job: {
  partial: string;
  localPath: string;
  mtimeMs: number;
  data: Buffer;
  sizeBytes: number;
}): Promise<void> {
  return submit({ kind: 'land', ...job });
}

/** fsyncs a directory (its renames made durable) in one round trip. */
export function syncDirectory(dir: string): Promise<void> {
  return submit({ kind: 'syncdir', dir });
}
