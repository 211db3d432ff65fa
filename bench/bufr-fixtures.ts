/**
 * How much of the BUFR fixture collection decodes here with default settings, against ecCodes.
 *   npm run build && node dist/bench/bufr-fixtures.js [--tables DIR] [--verbose]
 * Every message is cut out of its file and given to `bufr_dump -jf` on its own, so a failing
 * message does not hide the others; ours decodes the same bytes. Prints files and messages that
 * each side decodes, the ones only ecCodes decodes (the gap to close) and the figures as JSON.
 * Environment: POLLER_BUFR_FIXTURES (fixture folder).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeBufr } from '../plugins/bufr/decoder/index.js';
import { findMessages } from '../plugins/bufr/decoder/sections.js';
import { findRepoRoot, loadLocalTables } from '../plugins/bufr/decoder/tables.js';

const ECCODES_TIMEOUT_MS = 120_000; // the big radar volumes take ecCodes about 40 s

function bufrFiles(dir: string, depth = 0): string[] {
  if (depth > 4) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...bufrFiles(p, depth + 1));
    else if (/\.bufr$/i.test(name)) out.push(p);
  }
  return out;
}

function eccodesDecodes(bytes: Uint8Array, tmp: string): boolean {
  const f = path.join(tmp, 'one.bufr');
  writeFileSync(f, bytes);
  const r = spawnSync('bufr_dump', ['-jf', f], {
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: ECCODES_TIMEOUT_MS,
    maxBuffer: 512 * 1024 * 1024,
  });
  if (r.status !== 0) return false;
  try {
    JSON.parse(r.stdout.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

function main(): void {
  const args = process.argv.slice(2);
  const at = args.indexOf('--tables');
  const tables = at >= 0 ? loadLocalTables(args[at + 1]!) : undefined;
  const verbose = args.includes('--verbose');
  const { POLLER_BUFR_FIXTURES: fromEnv } = process.env;
  const fixtures = fromEnv ?? path.resolve(findRepoRoot(), '..', 'shared', 'fixtures', 'bufr');
  if (!existsSync(fixtures)) {
    console.error(`bufr-fixtures: no fixtures at ${fixtures}; set POLLER_BUFR_FIXTURES`);
    process.exitCode = 2;
    return;
  }
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bufr-fixtures-'));
  const totals = {
    files: 0,
    messages: 0,
    eccodes: { files: 0, messages: 0 },
    ours: { files: 0, messages: 0 },
    oursOfEccodes: { files: 0, messages: 0 },
  };
  /** Per file: messages only ecCodes decodes, and our first error there. */
  const gap = new Map<string, { count: number; first: string }>();
  try {
    for (const file of bufrFiles(fixtures)) {
      const bytes = readFileSync(file);
      const found = findMessages(bytes);
      const rel = path.relative(fixtures, file);
      totals.files++;
      let ecAll = found.length > 0;
      let oursAll = found.length > 0;
      let oursOfEc = true;
      for (const m of found) {
        totals.messages++;
        const one = m.ok ? bytes.subarray(m.offset, m.offset + m.length) : bytes.subarray(m.offset);
        const ec = m.ok && eccodesDecodes(one, tmp);
        const res = decodeBufr(one, tables ? { tables, radar: false } : { radar: false });
        const first = res.messages[0];
        const ours = first?.ok === true;
        if (ec) totals.eccodes.messages++;
        if (ours) totals.ours.messages++;
        if (ec && ours) totals.oursOfEccodes.messages++;
        ecAll &&= ec;
        oursAll &&= ours;
        if (ec && !ours) {
          oursOfEc = false;
          const g = gap.get(rel) ?? { count: 0, first: first && !first.ok ? first.error.message : 'no message' };
          g.count++;
          gap.set(rel, g);
        }
      }
      if (ecAll) totals.eccodes.files++;
      if (oursAll) totals.ours.files++;
      if (ecAll && oursOfEc) totals.oursOfEccodes.files++;
      if (verbose)
        console.log(
          `${rel}: ${found.length} message(s), ecCodes ${ecAll ? 'ok' : 'fails'}, ours ${oursAll ? 'ok' : 'fails'}`,
        );
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log(
    `files: ${totals.files}; ecCodes decodes ${totals.eccodes.files}, poller ${totals.ours.files}, poller of ecCodes' ${totals.oursOfEccodes.files}`,
  );
  console.log(
    `messages: ${totals.messages}; ecCodes decodes ${totals.eccodes.messages}, poller ${totals.ours.messages}, poller of ecCodes' ${totals.oursOfEccodes.messages}`,
  );
  for (const [rel, g] of gap) console.log(`  only ecCodes: ${rel}: ${g.count} message(s), first: ${g.first}`);
  console.log(JSON.stringify(totals));
}

main();
