/**
 * The FTP floor: the least Node program that does the bench's copy with basic-ftp, the library
 * poller builds on. N clients, list the tree, `downloadTo` each file into `<dest>/<path>`; no
 * ledger, no fsync, no log. Its figures next to poller's say how much is poller's own work and
 * how much is the library's.
 *
 * `node basic-ftp-copy.js <host> <port> <user> <remote dir> <dest> <clients>`; the password
 * comes from FLOOR_FTP_PASSWORD (never argv).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'basic-ftp';

const [host = '127.0.0.1', port = '21', user = 'anonymous', remote = '/', dest = '.', clients = '8'] =
  process.argv.slice(2);
const password = process.env['FLOOR_FTP_PASSWORD'] ?? '';

async function connect(): Promise<Client> {
  const c = new Client();
  await c.access({ host, port: Number(port), user, password });
  return c;
}

/** Every file under `dir`, as paths relative to `remote`. */
async function listTree(c: Client, dir: string, out: string[]): Promise<void> {
  for (const e of await c.list(path.posix.join(remote, dir))) {
    const rel = dir === '' ? e.name : `${dir}/${e.name}`;
    if (e.isDirectory) await listTree(c, rel, out);
    else if (e.isFile) out.push(rel);
  }
}

const pool = await Promise.all(Array.from({ length: Number(clients) }, connect));
const files: string[] = [];
await listTree(pool[0] as Client, '', files);
let next = 0;
await Promise.all(
  pool.map(async (c) => {
    for (let i = next++; i < files.length; i = next++) {
      const rel = files[i] as string;
      const to = path.join(dest, rel);
      await mkdir(path.dirname(to), { recursive: true });
      await c.downloadTo(to, path.posix.join(remote, rel));
    }
    c.close();
  }),
);
