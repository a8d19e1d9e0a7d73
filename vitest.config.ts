import { defineConfig } from 'vitest/config';

// One run over every package (each package's own vitest.config.ts applies to its tests), the
// browser example's end-to-end test (headless Chromium) and the repository scripts' tests.
export default defineConfig({
  test: {
    projects: ['packages/*', 'examples/browser', 'examples/deploy', 'scripts/vitest.config.mjs'],
  },
});
