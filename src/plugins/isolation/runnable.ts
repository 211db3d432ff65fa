/**
 * Worker threads and child processes of Node 20 load JavaScript only. Run from the TypeScript
 * sources (the test suite, an editor's runner), a module of this repository is loaded from its
 * compiled twin under `dist/` instead; `npm test` builds first.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { builtModuleUrl, PACKAGE_ROOT as ROOT } from '../../package-paths.js';

/** The URL a worker thread or child process can import for `url` (unchanged unless a repo .ts). */
export function runnableUrl(url: string): string {
  if (!url.startsWith('file:')) return url;
  const file = fileURLToPath(url);
  if (!file.endsWith('.ts')) return url;
  const rel = path.relative(ROOT, file);
  if (rel.startsWith('..') || path.isAbsolute(rel))
    throw new Error(
      `${file}: a TypeScript module cannot run in a worker or child process on Node 20; compile it to .js`,
    );
  const built = path.join(ROOT, 'dist', rel.replace(/\.ts$/, '.js'));
  if (!existsSync(built)) throw new Error(`${rel} has no build at dist/; run npm run build`);
  return pathToFileURL(built).href;
}

/** The plugin host script, as a worker thread or child process loads it. */
export function hostScriptUrl(): string {
  return builtModuleUrl('src/plugins/isolation/host.js');
}
