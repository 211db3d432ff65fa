/**
 * Where a remote file lands: `<landing>/<source>/<remote path>`. Remote names are data from a
 * server we do not control; anything that could escape the landing root is refused, never followed.
 */
import path from 'node:path';

/** Longest path component most filesystems accept (bytes). */
const MAX_COMPONENT_BYTES = 255;

/** Anything that needs a closer look: a bad character, a leading or doubled slash, a . or .. segment. */
const SUSPECT = /[\\\x00-\x1f\x7f]|^\/|\/\/|(?:^|\/)\.{1,2}(?:\/|$)|^$/;

/** A UTF-16 unit is at most 3 UTF-8 bytes: a component of 85 units or fewer cannot exceed 255 bytes. */
const SHORT_COMPONENT_UNITS = 85;

/**
 * Whether a component may be longer than 255 bytes. A scan for slashes, not the regular
 * expression /[^/]{86}/: that one tries every start position, and cost about 10 µs per path,
 * a second per 100,000-entry listing.
 */
function mayHaveLongComponent(p: string): boolean {
  if (p.length <= SHORT_COMPONENT_UNITS) return false;
  for (let start = 0; ; ) {
    const slash = p.indexOf('/', start);
    const end = slash < 0 ? p.length : slash;
    if (end - start > SHORT_COMPONENT_UNITS) return true;
    if (slash < 0) return false;
    start = slash + 1;
  }
}

/** Why a remote relative path cannot land, or undefined when it is safe. Pure; on the listing hot path. */
export function unsafeRemotePathReason(remotePath: string): string | undefined {
  if (!SUSPECT.test(remotePath) && !mayHaveLongComponent(remotePath)) return undefined;
  return detailedReason(remotePath);
}

function detailedReason(remotePath: string): string | undefined {
  if (remotePath.length === 0) return 'empty name';
  if (remotePath.includes('\0')) return 'name contains a NUL byte';
  if (remotePath.includes('\\')) return 'name contains a backslash';
  if (remotePath.startsWith('/')) return 'absolute path';
  if (/[\x00-\x1f\x7f]/.test(remotePath)) return 'name contains control characters';
  for (const part of remotePath.split('/')) {
    if (part === '') return 'empty path component';
    if (part === '.' || part === '..') return `path component "${part}"`;
    if (Buffer.byteLength(part) > MAX_COMPONENT_BYTES)
      return `a path component is longer than ${MAX_COMPONENT_BYTES} bytes`;
  }
  // Our own bookkeeping directories live at the landing root; a source's tree is one level down,
  // but a remote dir named like them must not be mistaken for them in tools that walk the tree.
  return undefined;
}

/**
 * Absolute landing path of a remote file. Throws when the result would leave the source's
 * directory (defence in depth: callers check `unsafeRemotePathReason` first).
 */
export function landingPathFor(landingRoot: string, source: string, remotePath: string): string {
  const reason = unsafeRemotePathReason(remotePath);
  if (reason) throw new Error(`refusing to land "${JSON.stringify(remotePath).slice(1, -1)}": ${reason}`);
  const base = path.resolve(landingRoot, source);
  const full = path.resolve(base, ...remotePath.split('/'));
  if (!full.startsWith(base + path.sep))
    throw new Error(`refusing to land "${remotePath}": it resolves outside ${source}/`);
  return full;
}

/** Directory of partial downloads; survives restarts so transfers can resume. */
export function partialDir(landingRoot: string): string {
  return path.join(landingRoot, '.partial');
}

/**
 * Partial file of one ledger row at one version. The version is in the name because a row still
 * settling can move to a new size/mtime: a partial of the old content must never be resumed.
 */
export function partialPathFor(landingRoot: string, fileId: number, sizeBytes: number, mtimeMs: number): string {
  return path.join(partialDir(landingRoot), `${fileId}-${sizeBytes}-${mtimeMs}.part`);
}
