import { defineConfig } from 'vitest/config';

/** Shared vitest settings: tests read other workspace packages' sources via the @rs/source condition. */
export default defineConfig({
  resolve: { conditions: ['@rs/source'] },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    pool: 'forks',
  },
});
