/**
 * Writeback while a large file still downloads. A file is fsynced before it is renamed into
 * place; left to the end, that fsync writes every dirty page of the file at once while the
 * transfer sits idle (about 1.4 s for 512 MiB on a plain virtual disk). A background fdatasync
 * every WRITEBACK_BYTES written lets the disk work while the network does, so the final fsync
 * finds little left. It adds no guarantee and removes none: the final fsync still decides.
 */
import { fdatasync, type WriteStream } from 'node:fs';

/** Sync after this many new bytes: large enough that a small file never pays for one. */
const WRITEBACK_BYTES = 32 * 1024 * 1024;
/** How often the written count is looked at. */
const CHECK_MS = 100;

export class EarlyWriteback {
  readonly #fd: number;
  readonly #out: WriteStream;
  readonly #timer: ReturnType<typeof setInterval>;
  #syncedUpTo: number;
  #running: Promise<void> | undefined;

  constructor(fd: number, out: WriteStream, startBytes: number) {
    this.#fd = fd;
    this.#out = out;
    this.#syncedUpTo = startBytes;
    this.#timer = setInterval(() => this.#check(), CHECK_MS);
    this.#timer.unref();
  }

  #check(): void {
    const written = this.#out.bytesWritten;
    if (this.#running || written - this.#syncedUpTo < WRITEBACK_BYTES) return;
    this.#syncedUpTo = written;
    this.#running = new Promise<void>((resolve) => {
      // A failure here is found again by the final fsync, which is the one that counts.
      fdatasync(this.#fd, () => {
        this.#running = undefined;
        resolve();
      });
    });
  }

  /** Stops; resolves once no sync is under way on the descriptor (it may be closed then). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
