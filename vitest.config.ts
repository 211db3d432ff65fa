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
    // Type tests (`*.test-d.ts`, expectTypeOf) are checked by tsc, not run. Their own tsconfig
    // keeps tsc to those files and what they import (seconds), not the whole project.
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: 'test/tsconfig.typecheck.json' },
  },
});
