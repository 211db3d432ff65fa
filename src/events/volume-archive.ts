/**
 * A radar volume version as one fetchable object: a tar of its member files written into the
 * landing tree (`<landing>/_volumes/<source>/<key>/v<version>.tar`, served under
 * `publicBaseUrl` like the files), with a small JSON manifest beside it (each member's name,
 * path, length and SHA-512). A Global Cache caches the object a notification's canonical link
 * points at and nothing else, so a volume announced by one link per member would reach
 * subscribers through the caches one member only; one archive carries the whole volume.
 *
 * The archive is deterministic (tar.ts): written again after a crash it has the same bytes and
 * hash. What changed since the previous version comes from the previous version's manifest.
 * Member files are read from the landing tree; a member missing or changed since is an error
 * (the notification is not sent; a newer version follows).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { VolumeFact } from '../ledger/ledger.js';
import { TAR_END, tarHeader, tarPadding } from './tar.js';

/** Where archives go, under the landing root (source names start with a letter or digit). */
export const VOLUMES_DIR = '_volumes';
/** Archives remembered per process (each sink formats the same volume once more otherwise). */
const REMEMBERED = 256;

export interface VolumeObject {
  /** Relative to the landing root, `/`-separated. */
  readonly rel: string;
  readonly manifestRel: string;
  readonly sizeBytes: number;
  /** SHA-512 of the archive, base64. */
  readonly sha512: string;
  /** Members new or with other bytes than in the previous version; undefined when that one is unknown. */
  readonly changed?: readonly string[];
  /** Members of the previous version that this one no longer has. */
  readonly removed?: readonly string[];
}

interface ManifestMember {
  readonly member: string;
  readonly path: string;
  readonly sizeBytes: number;
  readonly sha512: string;
}

/** A volume key as one directory name: no separators, no dot names. */
function keyDir(key: string): string {
  const clean = key.replace(/[/\\\0]/g, '_');
  return clean === '.' || clean === '..' || clean === '' ? `_${clean}` : clean;
}

function inside(root: string, p: string): boolean {
  return p.startsWith(root + path.sep);
}

async function hashFile(file: string): Promise<string> {
  const h = createHash('sha512');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('base64');
}

export class VolumeArchives {
  readonly #landing: string;
  readonly #known = new Map<string, Promise<VolumeObject>>();

  constructor(landing: string) {
    this.#landing = path.resolve(landing);
  }

  /** The archive of this volume version, written when not there yet. */
  get(source: string, v: VolumeFact): Promise<VolumeObject> {
    const dir = `${VOLUMES_DIR}/${source}/${keyDir(v.key)}`;
    const rel = `${dir}/v${v.version}.tar`;
    let p = this.#known.get(rel);
    if (!p) {
      p = this.#ensure(source, v, dir, rel);
      p.catch(() => this.#known.delete(rel));
      this.#known.set(rel, p);
      if (this.#known.size > REMEMBERED) this.#known.delete(this.#known.keys().next().value as string);
    }
    return p;
  }

  async #ensure(source: string, v: VolumeFact, dir: string, rel: string): Promise<VolumeObject> {
    const abs = (r: string) => path.join(this.#landing, ...r.split('/'));
    const file = abs(rel);
    const manifestRel = `${dir}/v${v.version}.json`;
    if (!inside(this.#landing, file)) throw new Error(`volume ${v.key}: archive path leaves the landing directory`);
    let members: ManifestMember[];
    if (existsSync(file) && existsSync(abs(manifestRel))) {
      members = (JSON.parse(await readFile(abs(manifestRel), 'utf8')) as { members: ManifestMember[] }).members;
    } else {
      await mkdir(path.dirname(file), { recursive: true });
      members = await this.#write(source, v, file);
      await writeDurably(abs(manifestRel), `${JSON.stringify({ key: v.key, version: v.version, members }, null, 1)}\n`);
    }
    const [st, sha512] = await Promise.all([stat(file), hashFile(file)]);
    return { rel, manifestRel, sizeBytes: st.size, sha512, ...(await this.#diff(v, dir, members)) };
  }

  /** Writes the tar (temp name, fsync, rename); returns the members as written. */
  async #write(source: string, v: VolumeFact, file: string): Promise<ManifestMember[]> {
    const root = path.join(this.#landing, source);
    const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const fh = await open(tmp, 'w', 0o644);
    const out: ManifestMember[] = [];
    try {
      for (const m of v.members) {
        const local = path.join(root, ...m.path.split('/'));
        if (!inside(root, local)) throw new Error(`volume ${v.key}: member ${m.path} leaves the landing directory`);
        const bytes = await readFile(local);
        if (bytes.length !== m.sizeBytes)
          throw new Error(`volume ${v.key}: member ${m.path} is ${bytes.length} bytes now, not ${m.sizeBytes}`);
        await fh.write(tarHeader(m.path, bytes.length, m.mtimeMs));
        await fh.write(bytes);
        await fh.write(tarPadding(bytes.length));
        const sha512 = createHash('sha512').update(bytes).digest('base64');
        out.push({ member: m.member, path: m.path, sizeBytes: bytes.length, sha512 });
      }
      await fh.write(TAR_END);
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await rename(tmp, file);
    return out;
  }

  /** What changed since version - 1, from its manifest. */
  async #diff(v: VolumeFact, dir: string, now: readonly ManifestMember[]): Promise<Partial<VolumeObject>> {
    if (v.version <= 1) return {};
    const prevFile = path.join(this.#landing, ...`${dir}/v${v.version - 1}.json`.split('/'));
    let prev: ManifestMember[];
    try {
      prev = (JSON.parse(await readFile(prevFile, 'utf8')) as { members: ManifestMember[] }).members;
    } catch {
      return {};
    }
    const before = new Map(prev.map((m) => [m.member, m.sha512]));
    const changed = now.filter((m) => before.get(m.member) !== m.sha512).map((m) => m.member);
    const names = new Set(now.map((m) => m.member));
    const removed = prev.filter((m) => !names.has(m.member)).map((m) => m.member);
    return { changed, ...(removed.length > 0 && { removed }) };
  }
}

async function writeDurably(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
