import { defineConfig } from 'vitest/config';

/**
 * Shared vitest settings: tests read other workspace packages' sources (not their builds)
 * through the `@rs/source` export condition, so they run without a build.
 */
export default defineConfig({
  resolve: { conditions: ['@rs/source', 'module', 'node', 'development|production'] },
  ssr: { resolve: { conditions: ['@rs/source', 'module', 'node', 'development|production'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    pool: 'forks',
  },
});
