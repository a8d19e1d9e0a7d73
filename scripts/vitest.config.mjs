// Tests of the repository scripts (plain Node modules; nothing to build).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { name: 'scripts', include: ['test/**/*.test.mjs'], pool: 'forks' },
});
