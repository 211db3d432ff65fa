/**
 * The digests of one landing: the SHA-512 an event sink wants (`integrity` of WNM) and the
 * announced digest's own method, when it differs. Fed as the bytes arrive (in memory, or on their
 * way to the disk), or from the partial for a prefix written by an earlier run.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, type WriteStream } from 'node:fs';
import type { Integrity } from '../sources/source.js';

export class LandingDigests {
  readonly #sha512: Hash | undefined;
  /** The announced method's hash; absent when it is SHA-512 and that hash serves both. */
  readonly #check: Hash | undefined;
  readonly #want: Integrity | undefined;
  #sha512Base64: string | undefined;

  constructor(sha512: boolean, integrity: Integrity | undefined) {
    this.#sha512 = sha512 ? createHash('sha512') : undefined;
    this.#want = integrity;
    this.#check =
      integrity && (integrity.method === 'sha512' && this.#sha512 ? undefined : createHash(integrity.method));
  }

  /** The hashes to feed, for a sink that hashes what it receives. */
  hashes(): Hash[] {
    return [this.#sha512, this.#check].filter((h): h is Hash => h !== undefined);
  }

  /** Feeds every hash from a file's first `endBytes` bytes (all of it when omitted), in one read. */
  async hashFile(file: string, endBytes?: number): Promise<void> {
    const hashes = this.hashes();
    if (hashes.length === 0 || endBytes === 0) return;
    const stream = createReadStream(file, endBytes === undefined ? {} : { end: endBytes - 1 });
    for await (const chunk of stream) for (const h of hashes) h.update(chunk as Buffer);
  }

  /** Hashes what a write stream writes, on its way to the disk: no second read of the file. */
  hashWrites(out: WriteStream): void {
    for (const h of this.hashes()) hashWrites(out, h);
  }

  /** The base64 SHA-512 when asked for; the hash is digested once, later calls return the same. */
  sha512(): string | undefined {
    this.#sha512Base64 ??= this.#sha512?.digest('base64');
    return this.#sha512Base64;
  }

  /** The announced digest and the one of the bytes landed, when a digest was announced. */
  announced(): { want: Integrity; got: Buffer } | undefined {
    if (!this.#want) return undefined;
    const got = this.#check ? this.#check.digest() : Buffer.from(this.sha512() as string, 'base64');
    return { want: this.#want, got };
  }
}

/** Hash what a write stream writes: its own write hooks are wrapped, so the bytes hashed are exactly the bytes written. */
function hashWrites(out: WriteStream, hash: Hash): void {
  type WriteFn = (chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void) => void;
  type WritevFn = (chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void) => void;
  const hooks = out as unknown as { _write: WriteFn; _writev?: WritevFn };
  const write = hooks._write;
  hooks._write = function (chunk, encoding, cb) {
    hash.update(chunk);
    write.call(this, chunk, encoding, cb);
  };
  const writev = hooks._writev;
  if (writev) {
    hooks._writev = function (chunks, cb) {
      for (const c of chunks) hash.update(c.chunk);
      writev.call(this, chunks, cb);
    };
  }
}
