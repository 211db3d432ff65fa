/**
 * `npm run bench:listings [--cases]`: runs the peer clients' listing corpus through poller's FTP
 * listing parser and prints the table by style (cases, correct, wrong, rejected though peers parse,
 * accepted though peers reject). `--cases` also lists every case not counted correct.
 * The corpus is read from `POLLER_FTP_LISTINGS` or `../shared/ftp-listings/corpus.json`.
 */
import { existsSync } from 'node:fs';
import { corpusPath, loadCorpus, renderTable, repoRootFrom, scoreCase, tabulate } from './lib/listing-corpus.js';

const file = corpusPath(
  repoRootFrom(import.meta.url, existsSync(new URL('../../package.json', import.meta.url)) ? 2 : 1),
);
if (!existsSync(file)) {
  console.error(`listing corpus not found at ${file}; set POLLER_FTP_LISTINGS to its corpus.json`);
  process.exit(1);
}
const results = loadCorpus(file).map(scoreCase);
console.log(renderTable(tabulate(results)));
if (process.argv.includes('--cases')) {
  for (const r of results) {
    if (r.verdict === 'correct') continue;
    console.log(`${r.verdict}\t${r.case.id}\t${r.case.server}\t${JSON.stringify(r.case.line)}\t${r.detail}`);
  }
}
