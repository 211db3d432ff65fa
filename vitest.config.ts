import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'plugins/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores in CI: a few forks keep servers and SQLite files from fighting for CPU.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    // A private directory per run for the PostgreSQL server the ledger suites start on first use;
    // its teardown stops that server, so a run leaves nothing running.
    globalSetup: ['test/helpers/postgres-global.ts'],
    // ftp-srv (the in-process test FTP server, not the product) can reject a promise of its own
    // when a client is killed mid-RETR (retr.js reads a socket that is already gone). Ignore only
    // errors whose stack is inside ftp-srv; anything else still fails the run.
    onUnhandledError(error) {
      const frames = (error as { stacks?: Array<{ file: string }> }).stacks ?? [];
      const inFtpSrv = /node_modules[\\/]ftp-srv[\\/]/;
      return !(inFtpSrv.test(error.stack ?? '') || frames.some((f) => inFtpSrv.test(f.file)));
    },
    // Type tests (`*.test-d.ts`, expectTypeOf) are checked by tsc, not run. Their own tsconfig
    // keeps tsc to those files and what they import (seconds), not the whole project.
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: 'test/tsconfig.typecheck.json' },
  },
});
