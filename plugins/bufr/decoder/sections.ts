/** Finding BUFR messages in a byte stream and reading Sections 0 to 5 of editions 2, 3 and 4. */
import { BufrError } from './errors.js';

/** Section 0, 1 and 3 content of one message. */
export interface BufrHeader {
  edition: number;
  masterTable: number;
  centre: number;
  subCentre: number;
  updateSequence: number;
  hasSection2: boolean;
  dataCategory: number;
  internationalSubCategory: number;
  localSubCategory: number;
  masterTablesVersion: number;
  localTablesVersion: number;
  /** Typical time from Section 1 (seconds are 0 before edition 4). */
  typicalTime: { year: number; month: number; day: number; hour: number; minute: number; second: number };
  numberOfSubsets: number;
  observed: boolean;
  compressed: boolean;
  /** Section 3 descriptors as FXXYYY integers. */
  descriptors: number[];
}

/** Byte layout of one message inside the input. */
export interface MessageLayout {
  header: BufrHeader;
  /** Offset of "BUFR" in the input. */
  offset: number;
  length: number;
  /** Bit range of the Section 4 data, absolute in the input. */
  dataStartBit: number;
  dataEndBit: number;
  section2?: Uint8Array;
}

/** A message found in the input, or the reason it could not be framed. */
export type FoundMessage =
  | { ok: true; offset: number; length: number }
  | { ok: false; offset: number; error: BufrError };

const MAGIC = [0x42, 0x55, 0x46, 0x52];
const MAX_MESSAGES = 100_000; // a stream of "BUFR" literals must not produce an unbounded list

function isMagicAt(b: Uint8Array, i: number): boolean {
  return b[i] === MAGIC[0] && b[i + 1] === MAGIC[1] && b[i + 2] === MAGIC[2] && b[i + 3] === MAGIC[3];
}

function u24(b: Uint8Array, i: number): number {
  return ((b[i] ?? 0) << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
}

function u16(b: Uint8Array, i: number): number {
  return ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
}

/**
 * Frame the messages in `bytes`: GTS headers, padding and garbage between messages are skipped;
 * a message whose declared length overruns the input or does not end in "7777" is reported as an
 * error for that message only, and the scan resumes after its "BUFR".
 */
export function findMessages(bytes: Uint8Array): FoundMessage[] {
  const out: FoundMessage[] = [];
  let i = 0;
  while (i + 4 <= bytes.length && out.length < MAX_MESSAGES) {
    const at = bytes.indexOf(0x42, i);
    if (at < 0 || at + 4 > bytes.length) break;
    if (!isMagicAt(bytes, at)) {
      i = at + 1;
      continue;
    }
    if (at + 8 > bytes.length) {
      out.push({
        ok: false,
        offset: at,
        error: new BufrError('BUFR_TRUNCATED', `message at byte ${at}: truncated inside Section 0`),
      });
      break;
    }
    const edition = bytes[at + 7]!;
    let length = u24(bytes, at + 4);
    if (edition < 2) {
      // Editions 0 and 1 have no total length: find the end marker instead.
      const end = indexOf7777(bytes, at + 4);
      length = end < 0 ? -1 : end + 4 - at;
    }
    if (length < 0 || at + length > bytes.length) {
      out.push({
        ok: false,
        offset: at,
        error: new BufrError(
          'BUFR_TRUNCATED',
          `message at byte ${at}: declares ${length} bytes but only ${bytes.length - at} remain; the file is truncated`,
        ),
      });
      i = at + 4;
      continue;
    }
    if (
      length < 8 + 4 ||
      !(
        bytes[at + length - 4] === 0x37 &&
        bytes[at + length - 3] === 0x37 &&
        bytes[at + length - 2] === 0x37 &&
        bytes[at + length - 1] === 0x37
      )
    ) {
      out.push({
        ok: false,
        offset: at,
        error: new BufrError(
          'BUFR_BAD_LENGTH',
          `message at byte ${at}: no "7777" at the declared end (length ${length})`,
        ),
      });
      i = at + 4;
      continue;
    }
    out.push({ ok: true, offset: at, length });
    i = at + length;
  }
  return out;
}

function indexOf7777(b: Uint8Array, from: number): number {
  for (let i = b.indexOf(0x37, from); i >= 0 && i + 4 <= b.length; i = b.indexOf(0x37, i + 1)) {
    if (b[i + 1] === 0x37 && b[i + 2] === 0x37 && b[i + 3] === 0x37) return i;
  }
  return -1;
}

/** Read Sections 1 to 4 of a framed message. */
export function readSections(bytes: Uint8Array, offset: number, length: number): MessageLayout {
  const end = offset + length;
  const edition = bytes[offset + 7]!;
  if (edition < 2 || edition > 4)
    throw new BufrError(
      'BUFR_EDITION',
      `message at byte ${offset}: edition ${edition} is not supported (2, 3 and 4 are)`,
    );
  const need = (at: number, n: number, what: string): void => {
    if (at + n > end - 4)
      throw new BufrError('BUFR_BAD_SECTION', `message at byte ${offset}: ${what} runs past the end of the message`);
  };
  let p = offset + 8;
  need(p, 3, 'Section 1');
  const s1len = u24(bytes, p);
  const s1min = edition === 4 ? 22 : 17;
  if (s1len < s1min)
    throw new BufrError(
      'BUFR_BAD_SECTION',
      `message at byte ${offset}: Section 1 is ${s1len} bytes, expected >= ${s1min}`,
    );
  need(p, s1len, 'Section 1');
  const s = (k: number): number => bytes[p + k - 1]!; // 1-based octet numbers as in the Manual on Codes
  let h: Omit<BufrHeader, 'numberOfSubsets' | 'observed' | 'compressed' | 'descriptors'>;
  if (edition === 4) {
    h = {
      edition,
      masterTable: s(4),
      centre: u16(bytes, p + 4),
      subCentre: u16(bytes, p + 6),
      updateSequence: s(9),
      hasSection2: (s(10) & 0x80) !== 0,
      dataCategory: s(11),
      internationalSubCategory: s(12),
      localSubCategory: s(13),
      masterTablesVersion: s(14),
      localTablesVersion: s(15),
      typicalTime: { year: u16(bytes, p + 15), month: s(18), day: s(19), hour: s(20), minute: s(21), second: s(22) },
    };
  } else {
    const yy = s(13);
    // Year of century; 100 means 2000 in some encoders.
    const year = yy === 100 ? 2000 : yy > 50 ? 1900 + yy : 2000 + yy;
    h = {
      edition,
      masterTable: s(4),
      centre: edition === 3 ? s(6) : u16(bytes, p + 4),
      subCentre: edition === 3 ? s(5) : 0,
      updateSequence: s(7),
      hasSection2: (s(8) & 0x80) !== 0,
      dataCategory: s(9),
      internationalSubCategory: 255,
      localSubCategory: s(10),
      masterTablesVersion: s(11),
      localTablesVersion: s(12),
      typicalTime: { year, month: s(14), day: s(15), hour: s(16), minute: s(17), second: 0 },
    };
  }
  p += s1len;
  let section2: Uint8Array | undefined;
  if (h.hasSection2) {
    need(p, 4, 'Section 2');
    const s2len = u24(bytes, p);
    if (s2len < 4)
      throw new BufrError('BUFR_BAD_SECTION', `message at byte ${offset}: Section 2 length ${s2len} is too small`);
    need(p, s2len, 'Section 2');
    section2 = bytes.subarray(p + 4, p + s2len);
    p += s2len;
  }
  need(p, 7, 'Section 3');
  const s3len = u24(bytes, p);
  if (s3len < 7)
    throw new BufrError('BUFR_BAD_SECTION', `message at byte ${offset}: Section 3 length ${s3len} is too small`);
  need(p, s3len, 'Section 3');
  const numberOfSubsets = u16(bytes, p + 4);
  const flags = bytes[p + 6]!;
  const descriptors: number[] = [];
  for (let q = p + 7; q + 1 < p + s3len; q += 2) {
    const f = bytes[q]! >> 6;
    const x = bytes[q]! & 0x3f;
    const y = bytes[q + 1]!;
    descriptors.push(f * 100000 + x * 1000 + y);
  }
  p += s3len;
  need(p, 4, 'Section 4');
  const s4len = u24(bytes, p);
  if (s4len < 4)
    throw new BufrError('BUFR_BAD_SECTION', `message at byte ${offset}: Section 4 length ${s4len} is too small`);
  // Some writers get Section 4's length slightly wrong; trust the message end when it is shorter.
  const dataEnd = Math.min(p + s4len, end - 4);
  return {
    header: {
      ...h,
      numberOfSubsets,
      observed: (flags & 0x80) !== 0,
      compressed: (flags & 0x40) !== 0,
      descriptors,
    },
    offset,
    length,
    dataStartBit: (p + 4) * 8,
    dataEndBit: dataEnd * 8,
    ...(section2 ? { section2 } : {}),
  };
}
