/**
 * EPLF (`+i8388621.48594,m825718503,r,s280,up755\tname`, cr.yp.to/ftp/list/eplf.html): facts
 * separated by commas, a tab, the name. `r` is a file, `/` a directory; `m` is the time in UTC
 * seconds since the epoch, `s` the exact size.
 */
import { IGNORED, type LineResult, parseSize } from './types.js';

export function parseEplfLine(line: string): LineResult {
  if (!line.startsWith('+')) return undefined;
  const tab = line.indexOf('\t');
  if (tab < 0) return undefined;
  const name = line.slice(tab + 1);
  if (name === '') return undefined;
  let isFile = false;
  let isDir = false;
  let sizeBytes: number | undefined;
  let mtimeMs: number | undefined;
  for (const fact of line.slice(1, tab).split(',')) {
    if (fact === 'r') isFile = true;
    else if (fact === '/') isDir = true;
    else if (fact.startsWith('s')) {
      sizeBytes = parseSize(fact.slice(1));
      if (sizeBytes === undefined) return undefined;
    } else if (fact.startsWith('m')) {
      const seconds = parseSize(fact.slice(1));
      if (seconds === undefined) return undefined;
      mtimeMs = seconds * 1000;
    }
  }
  if (!isFile && !isDir) return undefined;
  if (name === '.' || name === '..') return IGNORED;
  return {
    name,
    type: isDir ? 'dir' : 'file',
    sizeBytes: isDir ? (sizeBytes ?? 0) : sizeBytes,
    mtimeMs,
    mtimePrecision: 's',
  };
}
