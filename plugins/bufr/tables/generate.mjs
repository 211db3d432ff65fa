#!/usr/bin/env node
// Regenerates wmo-tables.json from the ecCodes definitions shipped by Debian's libeccodes-data
// (Apache-2.0, see NOTICE). Run after `scripts/install-eccodes.sh`:
//   node plugins/bufr/tables/generate.mjs [/usr/share/eccodes/definitions/bufr/tables/0/wmo]
// The newest version is stored whole; every older one only as its differences to the next newer
// one, which keeps all versions in a few hundred kilobytes.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.argv[2] ?? '/usr/share/eccodes/definitions/bufr/tables/0/wmo';
const MIN_VERSION = 2;

function readElements(file) {
  const out = {};
  for (const line of readFileSync(file, 'latin1').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split('|');
    if (f.length < 8) continue;
    const code = Number(f[0]);
    // [key, name, unit, scale, reference, width, type]
    out[code] = [f[1], f[3].trim(), f[4].trim(), Number(f[5]), Number(f[6]), Number(f[7]), f[2]];
  }
  return out;
}

function readSequences(file) {
  const out = {};
  const text = readFileSync(file, 'latin1');
  const re = /"(\d{6})"\s*=\s*\[([^\]]*)\]/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out[Number(m[1])] = m[2]
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map(Number);
  }
  return out;
}

function diff(older, newer) {
  const d = {};
  for (const k of Object.keys(older)) {
    if (JSON.stringify(older[k]) !== JSON.stringify(newer[k])) d[k] = older[k];
  }
  for (const k of Object.keys(newer)) if (!(k in older)) d[k] = null;
  return d;
}

const versions = readdirSync(root)
  .filter((v) => /^\d+$/.test(v) && Number(v) >= MIN_VERSION && existsSync(path.join(root, v, 'element.table')))
  .map(Number)
  .sort((a, b) => b - a);
const newest = versions[0];
const elements = versions.map((v) => readElements(path.join(root, String(v), 'element.table')));
const sequences = versions.map((v) => readSequences(path.join(root, String(v), 'sequence.def')));
const out = {
  source: 'ecCodes definitions (libeccodes-data), bufr/tables/0/wmo; Apache-2.0, Copyright ECMWF; see NOTICE',
  versions: [...versions].sort((a, b) => a - b),
  newest,
  elements: { [newest]: elements[0] },
  sequences: { [newest]: sequences[0] },
};
for (let i = 1; i < versions.length; i++) {
  out.elements[versions[i]] = diff(elements[i], elements[i - 1]);
  out.sequences[versions[i]] = diff(sequences[i], sequences[i - 1]);
}
const target = path.join(here, 'wmo-tables.json');
writeFileSync(target, JSON.stringify(out));
console.log(`wrote ${target}: versions ${out.versions.join(',')}, ${readFileSync(target).length} bytes`);
