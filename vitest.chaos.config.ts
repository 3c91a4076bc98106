import { defineConfig } from 'vitest/config';

/**
 * The chaos suite (`npm run test:chaos`): the roles as separate processes from the built CLI
 * (`dist/`), faults injected, invariants checked. One file at a time, long bounded timeouts.
 */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 240_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
