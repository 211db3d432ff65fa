/**
 * A POSIX ustar archive writer, deterministic: the same members (names, bytes, mtimes) always
 * give the same archive bytes, so an archive written again after a crash has the hash already
 * announced. Regular files only, mode 0644, owner 0:0, names up to 255 bytes (ustar prefix).
 * Hand-written because it is small and its determinism is the point; GNU tar reads it (tested).
 */
const BLOCK = 512;

function field(header: Buffer, offset: number, length: number, text: string): void {
  header.write(text, offset, length, 'utf8');
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

/** Splits a long name into ustar's prefix (155) and name (100) at a `/`. */
function splitName(name: string): { prefix: string; name: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.lastIndexOf('/'); i > 0; i = name.lastIndexOf('/', i - 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { prefix, name: rest };
  }
  throw new Error(`tar: member name too long for ustar (${name.length} characters): ${name.slice(0, 60)}...`);
}

/** The 512-byte header of one regular file. */
export function tarHeader(name: string, sizeBytes: number, mtimeMs: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const n = splitName(name);
  field(h, 0, 100, n.name);
  field(h, 100, 8, octal(0o644, 8));
  field(h, 108, 8, octal(0, 8));
  field(h, 116, 8, octal(0, 8));
  field(h, 124, 12, octal(sizeBytes, 12));
  field(h, 136, 12, octal(Math.max(0, Math.floor(mtimeMs / 1000)), 12));
  field(h, 148, 8, '        ');
  field(h, 156, 1, '0');
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  field(h, 345, 155, n.prefix);
  let sum = 0;
  for (const b of h) sum += b;
  field(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** Zero bytes that pad a member of `sizeBytes` to a whole block. */
export function tarPadding(sizeBytes: number): Buffer {
  return Buffer.alloc((BLOCK - (sizeBytes % BLOCK)) % BLOCK);
}

/** The end of an archive: two zero blocks. */
export const TAR_END = Buffer.alloc(2 * BLOCK);
