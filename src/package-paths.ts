/**
 * Where this package's files are, from any of the places its code runs: the TypeScript sources
 * (the test suite), the tsc build under `dist/`, or the CLI bundle under `dist/bundle/`. Paths are
 * found from the package root (the directory holding package.json), never from this file's depth.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = fileURLToPath(import.meta.url);

/** True under the test runner (TypeScript sources), false in the build and the bundle. */
export const FROM_SOURCES = HERE.endsWith('.ts');

function findPackageRoot(from: string): string {
  let dir = from;
  // Bounded: a package root is a few levels up; stop at the filesystem root.
  for (let i = 0; i < 16; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`cannot find the poller package (package.json) above ${from}; reinstall poller`);
}

export const PACKAGE_ROOT = findPackageRoot(path.dirname(HERE));

/**
 * The file URL of a module of the tsc build, `dist/<rel>` (what worker threads and child
 * processes load: Node 20 runs no TypeScript there, and the bundle has no entry for them).
 */
export function builtModuleUrl(rel: string): string {
  const file = path.join(PACKAGE_ROOT, 'dist', rel);
  if (!existsSync(file)) throw new Error(`dist/${rel} is missing; run npm run build`);
  return pathToFileURL(file).href;
}

/** The entry file of a built-in plugin as the running code has it (source or build), if it exists. */
export function builtinPluginFile(name: string): string | undefined {
  const file = FROM_SOURCES
    ? path.join(PACKAGE_ROOT, 'plugins', name, 'index.ts')
    : path.join(PACKAGE_ROOT, 'dist', 'plugins', name, 'index.js');
  return existsSync(file) ? file : undefined;
}
