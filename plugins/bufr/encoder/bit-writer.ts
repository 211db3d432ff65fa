/** An MSB-first bit writer that grows its buffer as needed. */
export class BitWriter {
  private buf = new Uint8Array(1024);
  private bitPos = 0;

  /** Bits written so far. */
  get bitLength(): number {
    return this.bitPos;
  }

  private ensure(bits: number): void {
    const needBytes = Math.ceil((this.bitPos + bits) / 8);
    if (needBytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < needBytes) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf);
    this.buf = next;
  }

  /** Write the low `width` bits of a non-negative integer (any width up to 53). */
  writeBits(value: number, width: number): void {
    if (width <= 0) return;
    this.ensure(width);
    let remaining = width;
    // Split wide values so the bitwise operators below only ever see 32-bit integers.
    if (remaining > 32) {
      const high = Math.floor(value / 2 ** 32);
      this.writeBits(high, remaining - 32);
      remaining = 32;
      value = value - high * 2 ** 32;
    }
    for (let i = remaining - 1; i >= 0; i--) {
      const bit = Math.floor(value / 2 ** i) & 1;
      if (bit) this.buf[this.bitPos >> 3]! |= 0x80 >> (this.bitPos & 7);
      this.bitPos++;
    }
  }

  /** Write all ones (the BUFR "missing" pattern). */
  writeOnes(width: number): void {
    for (let left = width; left > 0; left -= 32) {
      const n = Math.min(32, left);
      this.writeBits(2 ** n - 1, n);
    }
  }

  /** Write a string as `bytes` ISO-8859-1 characters, space padded. */
  writeString(s: string, bytes: number): void {
    for (let i = 0; i < bytes; i++) {
      const c = i < s.length ? s.charCodeAt(i) & 0xff : 0x20;
      this.writeBits(c, 8);
    }
  }

  /** Write whole bytes (fast path when aligned). */
  writeBytes(bytes: Uint8Array): void {
    if ((this.bitPos & 7) === 0) {
      this.ensure(bytes.length * 8);
      this.buf.set(bytes, this.bitPos >> 3);
      this.bitPos += bytes.length * 8;
      return;
    }
    for (const b of bytes) this.writeBits(b, 8);
  }

  /** Pad with zero bits to a multiple of `bytes` octets. */
  padTo(bytes: number): void {
    const bits = bytes * 8;
    const rem = this.bitPos % bits;
    if (rem !== 0) {
      this.ensure(bits - rem);
      this.bitPos += bits - rem;
    }
  }

  /** The bytes written, zero padded to a whole octet. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, Math.ceil(this.bitPos / 8));
  }
}
