/** Thrown when a read would pass the end of the data section. */
export class BitsExhaustedError extends Error {
  constructor(wanted: number, left: number) {
    super(`data section ends early: wanted ${wanted} bits, ${left} left`);
  }
}

/** An MSB-first bit reader over a byte range; every read is checked against the end. */
export class BitReader {
  pos: number;
  readonly end: number;

  constructor(
    readonly buf: Uint8Array,
    startBit: number,
    endBit: number,
  ) {
    this.pos = startBit;
    this.end = Math.min(endBit, buf.length * 8);
  }

  /** Bits left before the end. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** Read an unsigned integer of 0 to 53 bits. */
  read(width: number): number {
    if (width === 0) return 0;
    if (this.pos + width > this.end) throw new BitsExhaustedError(width, this.end - this.pos);
    const buf = this.buf;
    let p = this.pos;
    let left = width;
    let v = 0;
    // Fast path: up to 24 bits that fit a 32-bit window.
    if (width <= 24) {
      const byte = p >> 3;
      const word =
        ((buf[byte] ?? 0) << 24) | ((buf[byte + 1] ?? 0) << 16) | ((buf[byte + 2] ?? 0) << 8) | (buf[byte + 3] ?? 0);
      this.pos = p + width;
      return ((word << (p & 7)) >>> (32 - width)) >>> 0;
    }
    while (left > 0) {
      const off = p & 7;
      const avail = 8 - off;
      const take = Math.min(avail, left);
      const bits = ((buf[p >> 3]! >> (avail - take)) & ((1 << take) - 1)) >>> 0;
      v = v * (1 << take) + bits;
      p += take;
      left -= take;
    }
    this.pos = p;
    return v;
  }

  /** Read `bytes` octets as ISO-8859-1 text; null when every octet is 0xFF (missing). */
  readString(bytes: number): string | null {
    if (this.pos + bytes * 8 > this.end) throw new BitsExhaustedError(bytes * 8, this.end - this.pos);
    let s = '';
    let allOnes = true;
    for (let i = 0; i < bytes; i++) {
      const c = this.read(8);
      if (c !== 0xff) allOnes = false;
      s += String.fromCharCode(c);
    }
    return allOnes && bytes > 0 ? null : s;
  }

  /** Copy `count` 8-bit values into `out` at `at`. */
  readBytesInto(out: Uint8Array, at: number, count: number): void {
    if (this.pos + count * 8 > this.end) throw new BitsExhaustedError(count * 8, this.end - this.pos);
    const shift = this.pos & 7;
    const buf = this.buf;
    let byte = this.pos >> 3;
    if (shift === 0) {
      out.set(buf.subarray(byte, byte + count), at);
    } else {
      const inv = 8 - shift;
      for (let i = 0; i < count; i++, byte++) out[at + i] = ((buf[byte]! << shift) | (buf[byte + 1]! >> inv)) & 0xff;
    }
    this.pos += count * 8;
  }

  skip(bits: number): void {
    if (this.pos + bits > this.end) throw new BitsExhaustedError(bits, this.end - this.pos);
    this.pos += bits;
  }
}
