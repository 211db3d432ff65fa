/**
 * The peer clients' listing corpus (751 lines from ten FTP clients' test suites, read in place
 * from `../shared/ftp-listings/`, or `POLLER_FTP_LISTINGS`) through poller's listing parser:
 * every line parses as the peers expect or is refused, never a wrong name or size, never an
 * impossible date. `npm run bench:listings` prints the same figures as a table by style.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type CaseResult,
  corpusPath,
  loadCorpus,
  renderTable,
  repoRootFrom,
  scoreCase,
  tabulate,
} from '../../bench/lib/listing-corpus.js';

const file = corpusPath(repoRootFrom(import.meta.url, 2));
const present = existsSync(file);
if (!present) {
  if (process.env['CI'] === 'true') throw new Error(`listing corpus missing at ${file} (set POLLER_FTP_LISTINGS)`);
  console.warn(`SKIPPED: FTP listing corpus not found at ${file}; set POLLER_FTP_LISTINGS to its corpus.json`);
}

/**
 * Lines peers parse that poller refuses, on purpose: each would need a guess. Sizes past 2^53,
 * devices, modes that are not modes, a directory named `a -> b`, a month run into the owner.
 */
const REFUSED_ON_PURPOSE = new Set([
  'jlaffaye-008', // size 18446744073709551615: no exact number
  'chromium-026', // 7-character mode (Hylafax)
  'basicftp-033', // 9-character mode: the AXS-One lines of the same shape are rejected by peers
  'chromium-031', // month glued to the group column
  'chromium-032',
  'chromium-033',
  'chromium-034', // "garbage" as the mode
  'ftputil-001',
  'ftputil-006', // a directory "chemeng link -> chemeng target": which part is the name?
  'commonsnet-053',
  'commonsnet-054',
  'commonsnet-073',
  'commonsnet-074', // character and block devices: no data to fetch
  'filezilla-020', // octal mode and epoch seconds (one server, no date shape)
  'filezilla-021',
  'filezilla-022', // VShell's old form without a mode
  'filezilla-033',
  'filezilla-034',
  'filezilla-035', // mojibake Asian dates: the month and day markers are lost
  'filezilla-072', // no date at all
  'filezilla-080', // MLSD facts without the terminating ';' (pre-RFC draft); peers reject the same shape
]);

/** Styles the parser must cover entirely (barring the refusals above). */
const REQUIRED = [
  'unix',
  'unix-iso',
  'unix-variant',
  'dos',
  'mlsd',
  'eplf',
  'vms',
  'os400',
  'os2',
  'netware',
  'netpresenz',
];

describe.skipIf(!present)('FTP listing corpus of ten peer clients', () => {
  const results: CaseResult[] = present ? loadCorpus(file).map(scoreCase) : [];
  const ids = (pick: (r: CaseResult) => boolean) => results.filter(pick).map((r) => r.case.id);

  it('has the whole corpus', () => {
    expect(results.length).toBe(751);
    console.log(renderTable(tabulate(results)));
  });

  it('never gives a wrong name or size', () => {
    expect(results.filter((r) => r.verdict === 'wrongNameOrSize').map((r) => `${r.case.id}: ${r.detail}`)).toEqual([]);
  });

  it('gives no wrong type or target, and a time other than the peers only where they guess a future year', () => {
    // "01-06-79" is 2079 to the peers; poller reads two-digit years as the latest not in the future: 1979.
    expect(ids((r) => r.verdict === 'wrongOther')).toEqual(['chromium-056']);
  });

  it('refuses every line with an impossible date', () => {
    const impossible = results.filter(
      (r) =>
        !r.case.valid && /99-25|12-99|99:00|12:99|Aug 36|May 32|30:01|18:79|Feb 23 30|2012-30|30:06/.test(r.case.line),
    );
    expect(impossible.length).toBeGreaterThan(10);
    expect(impossible.filter((r) => r.verdict !== 'correct').map((r) => r.case.line)).toEqual([]);
  });

  it('parses every unix, dos, mlsd, eplf, localized-month, VMS, OS/400, OS/2, Netware and NetPresenz case the peers parse', () => {
    expect(
      ids(
        (r) => REQUIRED.includes(r.case.server) && r.verdict === 'rejectedValid' && !REFUSED_ON_PURPOSE.has(r.case.id),
      ),
    ).toEqual([]);
  });

  it('parses localized month names: de, fr, es, it, nl, pt, sv, ru, hu, ja, ko', () => {
    const localized = results.filter(
      (r) => r.case.server === 'unix-variant' && /[^\x00-\x7f]|Okt|Juli|Jan\.|oct 2004/.test(r.case.line),
    );
    expect(localized.length).toBeGreaterThan(8);
    expect(
      localized.filter((r) => r.verdict !== 'correct' && !REFUSED_ON_PURPOSE.has(r.case.id)).map((r) => r.case.line),
    ).toEqual([]);
  });
});
