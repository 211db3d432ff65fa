import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type DecodedMessage, decodeBufr } from '../../plugins/bufr/decoder/index.js';
import { type ElementDef, loadLocalTables, type TableLookup, tablesFor } from '../../plugins/bufr/decoder/tables.js';
import { encodeMessage } from '../../plugins/bufr/encoder/message.js';
import { formatSummary, jsonChunks, toJsonDocument } from '../../plugins/bufr/output/document.js';

const TIME = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));
// Centre 85 (Argentina) ships no local tables: its 0-01-212 is unknown without --tables.
const HEADER = { centre: 85, localVersion: 7, category: 0, masterVersion: 33, time: TIME };
const LOCAL: ElementDef = {
  code: 1212,
  key: 'localStationClass',
  name: 'Local station class',
  unit: 'Numeric',
  scale: 0,
  reference: 0,
  width: 8,
  isString: false,
};
const master = tablesFor({ masterVersion: 33, centre: 85, subCentre: 0, localVersion: 7, opera: false });
const withLocal: TableLookup = {
  label: 'master 33 + 0-01-212',
  element: (code) => (code === 1212 ? LOCAL : master.element(code)),
  sequence: (code) => master.sequence(code),
};
// WMO part first (block, station, date), then the local descriptor, then more WMO data.
const DESCRIPTORS = [1001, 1002, 301011, 1212, 12101];
const subset = (i: number) => [87, 100 + i, 2026, 11, 23, 3 + i, 280.5 + i];

function only(bytes: Uint8Array, tables?: Parameters<typeof decodeBufr>[1]): DecodedMessage {
  const m = decodeBufr(bytes, tables).messages[0]!;
  expect(m.ok, m.ok ? '' : m.error.message).toBe(true);
  return m as DecodedMessage;
}

describe('messages with a descriptor no table defines', () => {
  it('decode the WMO part before it (uncompressed: the subset it stops in), marked partial with the missing table', () => {
    const bytes = encodeMessage({
      ...HEADER,
      descriptors: DESCRIPTORS,
      subsets: [subset(0), subset(1)],
      tables: withLocal,
    });
    const m = only(bytes);
    expect(m.partial?.code).toBe('BUFR_PARTIAL');
    expect(m.partial?.descriptor).toBe(1212);
    expect(m.partial?.message).toMatch(/decoded up to 0-01-212/);
    expect(m.partial?.message).toMatch(/centre 85 \(sub-centre 0\), local table version 7/);
    expect(m.partial?.message).toMatch(/bufr\/tables\/0\/local\/7\/85\/0\/.*--tables/);
    expect(m.partial?.message).toMatch(/1 of 2 subset\(s\) have values/);
    expect(m.subsets).toHaveLength(1);
    expect(m.subsets[0]!.map((e) => [e.key, e.value])).toEqual([
      ['blockNumber', 87],
      ['stationNumber', 100],
      ['year', 2026],
      ['month', 11],
      ['day', 23],
    ]);
    const lines: string[] = [];
    formatSummary({ messages: [m] }, (l) => lines.push(l));
    expect(lines[0]).toBe('1 message(s), 0 decoded, 1 partly, 0 failed');
    expect(lines.join('\n')).toMatch(/5 values \(partial\)/);
    const doc = JSON.parse([...jsonChunks(toJsonDocument({ messages: [m] }, 'f'))].join('')) as {
      messages: Array<{ partial?: { code: string; descriptor: string } }>;
    };
    expect(doc.messages[0]!.partial).toMatchObject({ code: 'BUFR_PARTIAL', descriptor: '001212' });
  });

  it('decode every subset up to it when compressed', () => {
    const bytes = encodeMessage({
      ...HEADER,
      descriptors: DESCRIPTORS,
      compressed: true,
      subsets: [subset(0), subset(1), subset(2)],
      tables: withLocal,
    });
    const m = only(bytes);
    expect(m.partial?.message).toMatch(/every subset has the values before it/);
    expect(m.subsets.map((s) => s.map((e) => e.value))).toEqual([
      [87, 100, 2026, 11, 23],
      [87, 101, 2026, 11, 23],
      [87, 102, 2026, 11, 23],
    ]);
  });

  it('decode whole with the table given as a folder in ecCodes layout', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bufr-partial-'));
    const local = path.join(dir, '7', '85', '0');
    await mkdir(local, { recursive: true });
    await writeFile(
      path.join(local, 'element.table'),
      '#code|abbreviation|type|name|unit|scale|reference|width|crex_unit|crex_scale|crex_width\n' +
        '001212|localStationClass|long|LOCAL STATION CLASS|Numeric|0|0|8|Numeric|0|3\n',
    );
    const bytes = encodeMessage({
      ...HEADER,
      descriptors: DESCRIPTORS,
      subsets: [subset(0), subset(1)],
      tables: withLocal,
    });
    const m = only(bytes, { tables: loadLocalTables(dir) });
    expect(m.partial).toBeUndefined();
    expect(m.subsets.map((s) => s.map((e) => e.value))).toEqual([
      [87, 100, 2026, 11, 23, 3, 280.5],
      [87, 101, 2026, 11, 23, 4, 281.5],
    ]);
  });

  it('decode whole with the table given as BUFRDC text tables (wreport, libecbufr), local entries and sequences', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bufr-bufrdc-'));
    // Fixed columns as BUFRDC writes them; a master entry in the same file is left to the WMO tables.
    const bLine = (code: string, name: string, unit: string, scale: number, ref: number, width: number) =>
      ` ${code} ${name.padEnd(64)} ${unit.padEnd(24)}${String(scale).padStart(4)}${String(ref).padStart(13)}${String(width).padStart(4)} ${unit.padEnd(24)}${String(scale).padStart(3)}${String(3).padStart(10)}`;
    await writeFile(
      path.join(dir, 'B0000000000085033007.txt'),
      `${[bLine('012101', 'TEMPERATURE/AIR TEMPERATURE', 'K', 1, 0, 99), bLine('001212', 'LOCAL STATION CLASS', 'NUMERIC', 0, 0, 8)].join('\n')}\n`,
    );
    await writeFile(path.join(dir, 'D0000000000085033007.txt'), ' 301192  2 001212\n           012101\n');
    const bytes = encodeMessage({
      ...HEADER,
      descriptors: [1001, 1002, 301011, 1212, 12101],
      subsets: [subset(0)],
      tables: withLocal,
    });
    const tables = loadLocalTables(dir);
    expect(tables).toHaveLength(1);
    expect(tables[0]!.elements.has(12101)).toBe(false);
    expect(tables[0]!.sequences.get(301192)).toEqual([1212, 12101]);
    const m = only(bytes, { tables });
    expect(m.partial).toBeUndefined();
    expect(m.subsets[0]!.map((e) => e.value)).toEqual([87, 100, 2026, 11, 23, 3, 280.5]);
    expect(m.subsets[0]![5]!.name).toBe('LOCAL STATION CLASS');
  });

  it('fail whole when nothing comes before it', () => {
    const bytes = encodeMessage({ ...HEADER, descriptors: [1212, 12101], subsets: [[3, 280.5]], tables: withLocal });
    const m = decodeBufr(bytes).messages[0]!;
    expect(m.ok).toBe(false);
    if (!m.ok) expect(m.error.code).toBe('BUFR_UNKNOWN_DESCRIPTOR');
  });
});
