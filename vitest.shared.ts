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
    // Test files in a worker share one module graph (tfjs-core and the sources are loaded once per
    // worker, not once per file): @rs/core's tests took 45 s of CPU instead of 74 s. Tests therefore
    // count tensors as differences and restore any backend they switch to.
    isolate: false,
  },
});
