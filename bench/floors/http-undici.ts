/**
 * The HTTP floor: the least Node program that copies an index tree with undici, the library
 * poller's HTTP source uses. Walks the autoindex pages, then `request` + `pipeline` of each file
 * into a write stream, `connections` at a time over one keep-alive Pool. Nothing else: no
 * ledger, no fsync, no log. What poller costs beyond it is poller's own.
 *
 * Usage: node dist/bench/floors/http-undici.js <index url> <out dir> <connections>
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';

const [url = '', outDir = '', connections = '8'] = process.argv.slice(2);
const base = new URL(url);
const pool = new Pool(base.origin, { connections: Number(connections) });
const files: string[] = [];

async function walk(dir: string): Promise<void> {
  const html = await (await pool.request({ method: 'GET', path: dir })).body.text();
  const subdirs: string[] = [];
  for (const [, href = ''] of html.matchAll(/href="([^"?#]+)"/g)) {
    if (href.startsWith('/') || href.startsWith('.') || href.includes(':')) continue;
    if (href.endsWith('/')) subdirs.push(dir + href);
    else files.push(dir + href);
  }
  await Promise.all(subdirs.map(walk));
}

async function fetchOne(urlPath: string): Promise<void> {
  const rel = decodeURIComponent(urlPath.slice(base.pathname.length));
  const to = path.join(outDir, rel);
  mkdirSync(path.dirname(to), { recursive: true });
  const { statusCode, body } = await pool.request({ method: 'GET', path: urlPath });
  if (statusCode !== 200) throw new Error(`GET ${urlPath}: ${statusCode}`);
  await pipeline(body, createWriteStream(to));
}

await walk(base.pathname);
let next = 0;
await Promise.all(
  Array.from({ length: Number(connections) }, async () => {
    while (next < files.length) await fetchOne(files[next++] as string);
  }),
);
await pool.close();
