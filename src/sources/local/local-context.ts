/**
 * What the pieces of a local source share: its directory, its name for messages, its logger, and
 * the two rules every operation applies (a path stays inside the root; a foreign error becomes
 * one of ours, once, here).
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { NotFoundError, PermanentError, PollerError, SourceError, TransientError } from '../../errors.js';

export interface LocalContext {
  /** The source directory, absolute. */
  readonly root: string;
  readonly name: string;
  readonly log: Logger;
}

function toPosix(rel: string): string {
  return rel.split(path.sep).join('/');
}

/** A relative path as the engine writes it: `/`-separated, no leading or trailing slash, '' for the root. */
export function normaliseRel(rel: string): string {
  const trimmed = toPosix(rel).replace(/^\/+|\/+$/g, '');
  return trimmed === '.' ? '' : trimmed;
}

/** The child `name` of the relative directory `rel`. */
export const childOf = (rel: string, name: string): string => (rel === '' ? name : `${rel}/${name}`);

/** The local path of a relative one; refuses anything that climbs out of the root. */
export function localPathOf(ctx: LocalContext, rel: string): string {
  const full = path.resolve(ctx.root, rel);
  if (full !== ctx.root && !full.startsWith(ctx.root.endsWith(path.sep) ? ctx.root : ctx.root + path.sep)) {
    throw new PermanentError(
      'POLLER_LOCAL_PATH_OUTSIDE_ROOT',
      `local source "${ctx.name}": ${rel} points outside the source directory; it is not followed`,
    );
  }
  return full;
}

/** A failure of the root itself: the source cannot work at all. */
const ROOT_UNUSABLE = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM']);

/** A file-system error of `rel` ('' is the root) as one of ours; ours pass through. */
export function classifyLocal(ctx: LocalContext, err: unknown, rel: string): PollerError {
  if (err instanceof PollerError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const what = `local source "${ctx.name}": ${rel === '' ? ctx.root : rel}`;
  const cause = { cause: err };
  if (rel === '' && typeof code === 'string' && ROOT_UNUSABLE.has(code)) {
    return new SourceError(
      'POLLER_LOCAL_ROOT_UNUSABLE',
      `${what}: the source directory cannot be read (${String(code)}); check the url path and permissions`,
      cause,
    );
  }
  switch (code) {
    case 'ENOENT':
      return new NotFoundError('POLLER_LOCAL_NOT_FOUND', `${what}: no such file or directory`, cause);
    case 'EACCES':
    case 'EPERM':
      return new PermanentError(
        'POLLER_LOCAL_PERMISSION_DENIED',
        `${what}: permission denied; let the poller's user read it or exclude it`,
        cause,
      );
    case 'ENOTDIR':
    case 'EISDIR':
      return new PermanentError('POLLER_LOCAL_WRONG_TYPE', `${what}: not the expected file type (${code})`, cause);
    default:
      return new TransientError(
        'POLLER_LOCAL_IO',
        `${what}: ${typeof code === 'string' ? code : 'I/O error'}; will retry`,
        cause,
      );
  }
}
