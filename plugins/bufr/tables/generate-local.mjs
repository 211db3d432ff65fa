#!/usr/bin/env node
// Regenerates local-tables.json from the local BUFR tables in the ecCodes definitions shipped by
// Debian's libeccodes-data (Apache-2.0, see NOTICE). Run after `scripts/install-eccodes.sh`:
//   node plugins/bufr/tables/generate-local.mjs [/usr/share/eccodes/definitions/bufr/tables]
// ecCodes keeps them as <master table>/local/<local version>/<centre>/<sub-centre>/ and, for
// master version 19, <master version>-<local version>/<centre>/<sub-centre>/. A folder whose
// content equals one already stored (ecCodes links many DWD sub-centres to one table) is stored
// as a reference to it.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.argv[2] ?? '/usr/share/eccodes/definitions/bufr/tables';

function readElements(file) {
  const out = {};
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'latin1').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split('|');
    if (f.length < 8) continue;
    const code = Number(f[0]);
    if (!Number.isFinite(code)) continue;
    // [key, name, unit, scale, reference, width, type], as in wmo-tables.json
    out[code] = [f[1], f[3].trim(), f[4].trim(), Number(f[5]), Number(f[6]), Number(f[7]), f[2]];
  }
  return out;
}

function readSequences(file) {
  const out = {};
  if (!existsSync(file)) return out;
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

const dirs = (p) =>
  readdirSync(p)
    .filter((n) => statSync(path.join(p, n)).isDirectory())
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));

const tables = [];
const byContent = new Map();
for (const masterTable of dirs(root).filter((d) => /^\d+$/.test(d))) {
  const localRoot = path.join(root, masterTable, 'local');
  if (!existsSync(localRoot)) continue;
  for (const versionDir of dirs(localRoot)) {
    const v = /^(?:(\d+)-)?(\d+)$/.exec(versionDir);
    if (!v) continue;
    for (const centre of dirs(path.join(localRoot, versionDir)).filter((d) => /^\d+$/.test(d))) {
      for (const sub of dirs(path.join(localRoot, versionDir, centre)).filter((d) => /^\d+$/.test(d))) {
        const dir = path.join(localRoot, versionDir, centre, sub);
        const elements = readElements(path.join(dir, 'element.table'));
        const sequences = readSequences(path.join(dir, 'sequence.def'));
        if (Object.keys(elements).length + Object.keys(sequences).length === 0) continue;
        const entry = {
          masterTable: Number(masterTable),
          masterVersion: v[1] === undefined ? null : Number(v[1]),
          localVersion: Number(v[2]),
          centre: Number(centre),
          subCentre: Number(sub),
          path: `${masterTable}/local/${versionDir}/${centre}/${sub}`,
        };
        const content = JSON.stringify([elements, sequences]);
        const same = byContent.get(content);
        if (same !== undefined) tables.push({ ...entry, sameAs: same });
        else {
          byContent.set(content, tables.length);
          tables.push({ ...entry, elements, sequences });
        }
      }
    }
  }
}
const out = {
  source:
    'ecCodes definitions (libeccodes-data), bufr/tables/<master table>/local; Apache-2.0, Copyright ECMWF; see NOTICE',
  tables,
};
const target = path.join(here, 'local-tables.json');
writeFileSync(target, JSON.stringify(out));
const centres = [...new Set(tables.map((t) => t.centre))].sort((a, b) => a - b);
console.log(
  `wrote ${target}: ${tables.length} tables (${byContent.size} distinct), centres ${centres.join(',')}, ${readFileSync(target).length} bytes`,
);
