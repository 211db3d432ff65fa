/**
 * Include/exclude globs (minimatch) on paths relative to the source root, and the question the
 * walker asks: can anything below this directory match? That keeps a recursive listing only as
 * deep as the globs need.
 */
import { Minimatch } from 'minimatch';

const MM_OPTIONS = { dot: false, nocomment: true, nonegate: true } as const;

export class GlobFilter {
  readonly #include: Minimatch[];
  readonly #exclude: Minimatch[];

  constructor(include: readonly string[], exclude: readonly string[] = []) {
    this.#include = (include.length ? include : ['**']).map((g) => new Minimatch(stripSlash(g), MM_OPTIONS));
    this.#exclude = exclude.map((g) => new Minimatch(stripSlash(g), MM_OPTIONS));
  }

  /** Is this file path (relative, '/'-separated) wanted? */
  matches(filePath: string): boolean {
    return this.#include.some((m) => m.match(filePath)) && !this.isExcluded(filePath);
  }

  isExcluded(filePath: string): boolean {
    return this.#exclude.some((m) => m.match(filePath));
  }

  /** Could a file somewhere below `dirPath` match? An exclude glob that matches a directory prunes it whole. */
  shouldDescend(dirPath: string): boolean {
    if (this.isExcluded(dirPath)) return false;
    return this.#include.some((m) => m.match(dirPath, true));
  }
}

function stripSlash(glob: string): string {
  return glob.replace(/^\.?\/+/, '');
}

/** minimatch with our options, for plugin `match` globs. */
export function compileGlobs(globs: readonly string[]): (p: string) => boolean {
  const ms = globs.map((g) => new Minimatch(stripSlash(g), MM_OPTIONS));
  return (p) => ms.some((m) => m.match(p));
}
