/**
 * vitest globalSetup: one private directory per test run for the PostgreSQL server that
 * `postgres.ts` starts on first use (no server at all for a run that needs none), and, at the
 * end of the run, the server stopped and the directory removed: nothing is left running.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { stopRunServer } from './postgres-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgRunDir: string;
  }
}

export default function setup(project: TestProject): () => Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'poller-pg-run-'));
  project.provide('pgRunDir', dir);
  return async () => {
    await stopRunServer(dir);
    rmSync(dir, { recursive: true, force: true });
  };
}
