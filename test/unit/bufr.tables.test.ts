import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  availableMasterVersions,
  loadLocalTables,
  masterTables,
  nearestMasterVersion,
  parseEccodesElements,
  parseEccodesSequences,
  parseOperaTableB,
  parseOperaTableD,
  shippedLocalTable,
  shippedLocalTables,
  tablesFor,
} from '../../plugins/bufr/decoder/tables.js';

describe('bufr tables', () => {
  it('ships WMO master versions 13 to 39 and falls back to the nearest', () => {
    const v = availableMasterVersions();
    for (let i = 13; i <= 39; i++) expect(v).toContain(i);
    expect(nearestMasterVersion(40)).toBe(39);
    expect(nearestMasterVersion(99)).toBe(39);
    const t = masterTables(33);
    expect(t.elements.get(12101)).toMatchObject({
      key: 'airTemperature',
      unit: 'K',
      scale: 2,
      reference: 0,
      width: 16,
    });
    expect(t.sequences.get(301011)).toEqual([4001, 4002, 4003]);
    // Older versions are rebuilt from differences: 0-12-101 did not exist before version 13's
    // successors changed it, but every shipped version knows 0-01-001.
    expect(masterTables(13).elements.get(1001)?.width).toBe(7);
  });

  it('parses OPERA CSV tables', () => {
    const b = parseOperaTableB(
      '0;30;198;Byte element of a compressed array;Numeric;0;0;8\n0;01;193;Station identifier;CCITT IA5;0;0;128\n',
    );
    expect(b.get(30198)).toMatchObject({ width: 8, isString: false, name: 'Byte element of a compressed array' });
    expect(b.get(1193)?.isString).toBe(true);
    const d = parseOperaTableD('# c\n 3;21;204;  1;02;000\n  ;  ;   ;  0;31;001\n  ;  ;   ;  0;01;192\n');
    expect(d.get(321204)).toEqual([102000, 31001, 1192]);
  });

  it('loads local tables from a directory in either format and picks them by centre and version', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bufr-tables-'));
    await writeFile(path.join(dir, 'localtabb_41_2.csv'), '0;21;201;Range-bin size;Meter;0;0;14\n');
    const ec = path.join(dir, 'ec', '5', '78', '0');
    await mkdir(ec, { recursive: true });
    await writeFile(
      path.join(ec, 'element.table'),
      '#code|abbreviation|type|name|unit|scale|reference|width\n012192|myTemp|double|MY TEMP|K|1|0|12\n',
    );
    await writeFile(path.join(ec, 'sequence.def'), '"312192" = [ 012192, 012101 ]\n');
    const local = loadLocalTables(dir);
    const t41 = tablesFor({ masterVersion: 16, centre: 41, subCentre: 0, localVersion: 2, local, opera: false });
    expect(t41.element(21201)?.width).toBe(14);
    expect(t41.element(12192)).toBeUndefined();
    const t78 = tablesFor({ masterVersion: 13, centre: 78, subCentre: 0, localVersion: 5, local, opera: false });
    expect(t78.element(12192)).toMatchObject({ key: 'myTemp', scale: 1, width: 12 });
    expect(t78.sequence(312192)).toEqual([12192, 12101]);
    expect(t78.label).toMatch(/centre 78, sub-centre 0, master table version 13, local table version 5/);
  });

  it("ships the local tables ecCodes has and picks them by ecCodes' folder rule", () => {
    const centres = new Set(shippedLocalTables().map((t) => t.centre));
    for (const c of [98, 78, 254]) expect(centres).toContain(c);
    const ecmwf = tablesFor({ masterVersion: 13, centre: 98, subCentre: 0, localVersion: 1, opera: false });
    expect(ecmwf.element(1201)).toBeDefined();
    expect(ecmwf.sequence(310195)).toBeDefined();
    expect(ecmwf.label).toMatch(/shipped local tables 0\/local\/1\/98\/0/);
    // Master version 19 uses the <master>-<local> folder, as ecCodes does.
    expect(shippedLocalTable(0, 19, 98, 0, 1)?.source).toBe('0/local/19-1/98/0');
    expect(shippedLocalTable(0, 13, 98, 0, 1)?.source).toBe('0/local/1/98/0');
    // No folder for that sub-centre or local version 0: none, as in ecCodes.
    expect(shippedLocalTable(0, 13, 98, 7, 1)).toBeUndefined();
    expect(shippedLocalTable(0, 13, 98, 0, 0)).toBeUndefined();
    const off = tablesFor({
      masterVersion: 13,
      centre: 98,
      subCentre: 0,
      localVersion: 1,
      opera: false,
      shipped: false,
    });
    expect(off.element(1201)).toBeUndefined();
    expect(off.label).toMatch(/no local tables shipped for it or loaded/);
  });

  it('loads ecCodes <master version>-<local version> folders from --tables for that master version only', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bufr-tables-mv-'));
    const head = '#code|abbreviation|type|name|unit|scale|reference|width\n';
    for (const [folder, width] of [
      ['19-1', 9],
      ['1', 11],
    ] as const) {
      const d = path.join(dir, '0', 'local', folder, '98', '0');
      await mkdir(d, { recursive: true });
      await writeFile(path.join(d, 'element.table'), `${head}012193|localTemp|long|LOCAL TEMP|K|0|0|${width}\n`);
    }
    const local = loadLocalTables(dir);
    expect(local.find((t) => t.source.includes('19-1'))).toMatchObject({
      version: 1,
      centre: 98,
      subCentre: 0,
      masterVersion: 19,
    });
    const at = (masterVersion: number) =>
      tablesFor({ masterVersion, centre: 98, subCentre: 0, localVersion: 1, local, opera: false }).element(12193)
        ?.width;
    expect(at(19)).toBe(9);
    expect(at(13)).toBe(11);
  });

  const LOCAL = '/usr/share/eccodes/definitions/bufr/tables';
  it.skipIf(!existsSync(LOCAL))('ships every local table exactly as in the ecCodes definitions', () => {
    for (const t of shippedLocalTables()) {
      const dir = path.join(LOCAL, t.source);
      const el = path.join(dir, 'element.table');
      const want = existsSync(el) ? parseEccodesElements(readFileSync(el, 'latin1')) : new Map();
      expect(new Map(t.elements), t.source).toEqual(want);
      const sq = path.join(dir, 'sequence.def');
      const seqWant = existsSync(sq) ? parseEccodesSequences(readFileSync(sq, 'latin1')) : new Map();
      expect(new Map(t.sequences), t.source).toEqual(seqWant);
    }
  });

  const WMO = '/usr/share/eccodes/definitions/bufr/tables/0/wmo';
  it.skipIf(!existsSync(WMO))('rebuilds every shipped version exactly as in the ecCodes definitions', () => {
    for (const v of [6, 13, 16, 25, 33, 39]) {
      const want = parseEccodesElements(readFileSync(`${WMO}/${v}/element.table`, 'latin1'));
      const got = masterTables(v).elements;
      expect(got.size, `version ${v}`).toBe(want.size);
      for (const [code, e] of want) expect(got.get(code), `version ${v} ${code}`).toEqual(e);
      const seqWant = parseEccodesSequences(readFileSync(`${WMO}/${v}/sequence.def`, 'latin1'));
      expect(new Map(masterTables(v).sequences), `version ${v}`).toEqual(seqWant);
    }
  });
});
