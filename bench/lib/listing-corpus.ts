/**
 * Scores poller's FTP listing parser against the peer clients' corpus (`ftp-listings/corpus.json`
 * beside the project: 751 lines from ten clients' test suites, each with the parse its client
 * expects). Used by the corpus test and by `npm run bench:listings`, which prints the table.
 *
 * A case is `correct` when every fact poller claims matches the peers' (name, type, size, time,
 * link target) and the peers' verdict (entry / no entry) is the same. Facts poller leaves to the
 * server (SIZE, MDTM) are not compared but counted. VMS names are compared without the `;N`
 * version (poller keeps it as the entry's version), without `.DIR` and case-blind (peers disagree
 * on all three). Sizes are compared for files only: poller never uses a directory's or a link's
 * listed size, and peers disagree on them (512, 0, the link's length).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParsedEntry, parseList, parseMlsd } from '../../src/sources/ftp/list-parse.js';

export interface CorpusExpect {
  name: string;
  type: 'file' | 'dir' | 'link' | null;
  size: number | string | null;
  mtime: string | null;
  mtimeNoYear: string | null;
  target?: string;
}

export interface CorpusCase {
  id: string;
  source: string;
  server: string;
  command: 'LIST' | 'MLSD';
  line: string;
  valid: boolean;
  skip?: boolean;
  expect?: CorpusExpect;
  expectList?: CorpusExpect[];
  disagree?: unknown[];
}

export type Verdict = 'correct' | 'wrongNameOrSize' | 'wrongOther' | 'rejectedValid' | 'acceptedInvalid';

export interface CaseResult {
  readonly case: CorpusCase;
  readonly verdict: Verdict;
  readonly detail: string;
  /** Facts poller leaves for the lister to ask (SIZE / MDTM) where the peers give a value. */
  readonly sizeAsked: boolean;
  readonly timeAsked: boolean;
}

/** The corpus path: `POLLER_FTP_LISTINGS` or `../shared/ftp-listings/corpus.json` from the repo root. */
export function corpusPath(repoRoot: string): string {
  return process.env['POLLER_FTP_LISTINGS'] ?? path.resolve(repoRoot, '..', 'shared', 'ftp-listings', 'corpus.json');
}

export function repoRootFrom(metaUrl: string, up: number): string {
  let dir = path.dirname(fileURLToPath(metaUrl));
  for (let i = 0; i < up; i++) dir = path.dirname(dir);
  return dir;
}

export function loadCorpus(file: string): CorpusCase[] {
  return (JSON.parse(readFileSync(file, 'utf8')) as { cases: CorpusCase[] }).cases;
}

/** A fixed "now" so year-less dates resolve the same on every run. */
const NOW_MS = Date.UTC(2026, 11, 31, 12, 0, 0);
const UNIT_MS = { ms: 1, s: 1000, minute: 60_000, day: 86_400_000 } as const;

function parseCase(c: CorpusCase): ParsedEntry[] {
  const r = c.command === 'MLSD' ? parseMlsd(c.line) : parseList(c.line, { timezone: 'UTC', nowMs: NOW_MS });
  return r.entries;
}

const VMS_STYLES = new Set(['vms']);

function compare(
  c: CorpusCase,
  e: ParsedEntry,
  x: CorpusExpect,
): { verdict: Verdict; detail: string; sizeAsked: boolean; timeAsked: boolean } {
  const norm = (n: string) =>
    VMS_STYLES.has(c.server)
      ? n
          .replace(/;\d+$/, '')
          .replace(/\.dir$/i, '')
          .toLowerCase()
      : n;
  let sizeAsked = false;
  let timeAsked = false;
  if (norm(e.name) !== norm(x.name))
    return {
      verdict: 'wrongNameOrSize',
      detail: `name ${JSON.stringify(e.name)} != ${JSON.stringify(x.name)}`,
      sizeAsked,
      timeAsked,
    };
  // Sizes of directories and links are listing artefacts poller never uses (peers disagree: 512, 0, 3).
  if (x.size !== null && x.size !== undefined && e.type === 'file') {
    if (e.sizeBytes === undefined) sizeAsked = true;
    else if (String(e.sizeBytes) !== String(x.size))
      return { verdict: 'wrongNameOrSize', detail: `size ${e.sizeBytes} != ${x.size}`, sizeAsked, timeAsked };
  }
  if (x.type !== null && x.type !== e.type)
    return { verdict: 'wrongOther', detail: `type ${e.type} != ${x.type}`, sizeAsked, timeAsked };
  if (x.target !== undefined && x.target !== e.linkTarget)
    return { verdict: 'wrongOther', detail: `target ${e.linkTarget} != ${x.target}`, sizeAsked, timeAsked };
  if (x.mtime !== null || x.mtimeNoYear !== null) {
    if (e.mtimeMs === undefined) timeAsked = true;
    else {
      const unit = UNIT_MS[e.mtimePrecision];
      const ours = Math.floor(e.mtimeMs / unit) * unit;
      if (x.mtime !== null) {
        const theirs = Math.floor(Date.parse(x.mtime) / unit) * unit;
        if (ours !== theirs)
          return {
            verdict: 'wrongOther',
            detail: `mtime ${new Date(e.mtimeMs).toISOString()} != ${x.mtime}`,
            sizeAsked,
            timeAsked,
          };
      } else if (x.mtimeNoYear !== null) {
        const iso = new Date(e.mtimeMs).toISOString();
        const mine = x.mtimeNoYear.length > 5 ? iso.slice(5, 16) : iso.slice(5, 10);
        if (mine !== x.mtimeNoYear)
          return { verdict: 'wrongOther', detail: `mtime ${iso} != --${x.mtimeNoYear}`, sizeAsked, timeAsked };
      }
    }
  }
  return { verdict: 'correct', detail: '', sizeAsked, timeAsked };
}

export function scoreCase(c: CorpusCase): CaseResult {
  const entries = parseCase(c);
  const done = (verdict: Verdict, detail = '', sizeAsked = false, timeAsked = false): CaseResult => ({
    case: c,
    verdict,
    detail,
    sizeAsked,
    timeAsked,
  });
  if (!c.valid || c.skip) {
    return entries.length === 0
      ? done('correct')
      : done('acceptedInvalid', `entry ${JSON.stringify(entries[0]?.name)}`);
  }
  const expected = c.expectList ?? (c.expect ? [c.expect] : []);
  if (entries.length === 0) return done('rejectedValid');
  // The peer only asserts that the line parses (no fields to compare).
  if (expected.length === 0)
    return entries.length === 1 ? done('correct') : done('wrongNameOrSize', `${entries.length} entries`);
  if (entries.length !== expected.length)
    return done('wrongNameOrSize', `${entries.length} entries, peers ${expected.length}`);
  let sizeAsked = false;
  let timeAsked = false;
  for (let i = 0; i < expected.length; i++) {
    const e = entries[i];
    const x = expected[i];
    if (e === undefined || x === undefined) return done('wrongNameOrSize', 'entry missing');
    const r = compare(c, e, x);
    if (r.verdict !== 'correct') return done(r.verdict, r.detail);
    sizeAsked ||= r.sizeAsked;
    timeAsked ||= r.timeAsked;
  }
  return done('correct', '', sizeAsked, timeAsked);
}

/** The table's rows: style groups as in the listing issue. */
export const STYLE_GROUPS: ReadonlyArray<{ label: string; servers: readonly string[] }> = [
  { label: 'unix (`ls -l` shapes)', servers: ['unix', 'unix-iso', 'unix-numeric', 'vshell'] },
  { label: 'DOS / IIS', servers: ['dos'] },
  { label: 'MLSD', servers: ['mlsd'] },
  {
    label: 'unix with localized months, suffixed sizes, other date orders',
    servers: ['unix-variant', 'filezilla-server', 'vsftpd', 'trellix'],
  },
  { label: 'VMS', servers: ['vms'] },
  { label: 'OS/400 (IBM i)', servers: ['os400'] },
  { label: 'OS/2', servers: ['os2'] },
  { label: 'Netware', servers: ['netware'] },
  {
    label: 'MVS, z/VM, HP NonStop, Nortel, OS-9, Connect:Enterprise, other',
    servers: ['mvs', 'zvm', 'hpnonstop', 'nortel', 'os9', 'connect-enterprise', 'other'],
  },
  { label: 'EPLF', servers: ['eplf'] },
  { label: 'Mac servers (NetPresenz)', servers: ['netpresenz'] },
];

export interface TableRow {
  label: string;
  cases: number;
  correct: number;
  wrongNameOrSize: number;
  wrongOther: number;
  rejectedValid: number;
  acceptedInvalid: number;
  asked: number;
}

export function tabulate(results: readonly CaseResult[]): TableRow[] {
  const rows: TableRow[] = [];
  const all: TableRow = {
    label: 'all',
    cases: 0,
    correct: 0,
    wrongNameOrSize: 0,
    wrongOther: 0,
    rejectedValid: 0,
    acceptedInvalid: 0,
    asked: 0,
  };
  for (const g of STYLE_GROUPS) {
    const row: TableRow = {
      label: g.label,
      cases: 0,
      correct: 0,
      wrongNameOrSize: 0,
      wrongOther: 0,
      rejectedValid: 0,
      acceptedInvalid: 0,
      asked: 0,
    };
    for (const r of results) {
      if (!g.servers.includes(r.case.server)) continue;
      row.cases++;
      row[r.verdict]++;
      if (r.sizeAsked || r.timeAsked) row.asked++;
    }
    rows.push(row);
    for (const k of [
      'cases',
      'correct',
      'wrongNameOrSize',
      'wrongOther',
      'rejectedValid',
      'acceptedInvalid',
      'asked',
    ] as const)
      all[k] += row[k];
  }
  rows.push(all);
  return rows;
}

export function renderTable(rows: readonly TableRow[]): string {
  const head =
    '| style | cases | correct | **wrong name or size** | wrong type, time or target | rejected though peers parse it | accepted though peers reject it | of the correct: size or time asked by SIZE/MDTM |';
  const sep = '|---|---|---|---|---|---|---|---|';
  const body = rows.map(
    (r) =>
      `| ${r.label} | ${r.cases} | ${r.correct} | **${r.wrongNameOrSize}** | ${r.wrongOther} | ${r.rejectedValid} | ${r.acceptedInvalid} | ${r.asked} |`,
  );
  return [head, sep, ...body].join('\n');
}
