#!/usr/bin/env node
/**
 * Bundles the CLI (the tsc output under dist/src) into dist/bundle/: one module graph resolved at
 * build time, so a command starts without resolving and compiling some 400 modules (about half
 * the CPU of a short run-once). Code split: each command and source kind stays a lazily loaded
 * chunk. Kept out of the bundle, loaded from node_modules as before: native addons
 * (better-sqlite3, ssh2), packages that load their own files at run time (pino's transports,
 * ftp-srv), and the broker clients (loaded only with events). Worker threads and plugin hosts
 * load the tsc build (dist/src), not the bundle.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'bundle');

const EXTERNAL = [
  'better-sqlite3',
  'ssh2',
  'cpu-features',
  'pino',
  'thread-stream',
  'ftp-srv',
  'mqtt',
  'nats',
  'amqplib',
  'chokidar',
  'fsevents',
];

await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: [path.join(root, 'dist', 'src', 'cli', 'index.js')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  // CommonJS dependencies inside an ES module bundle call require(): give them one.
  banner: {
    js: "import { createRequire as __pollerRequire } from 'node:module'; const require = __pollerRequire(import.meta.url);",
  },
  sourcemap: 'linked',
  logLevel: 'warning',
  legalComments: 'linked',
});
