import { defineConfig } from 'vitest/config';

// One run over every package (each package's own vitest.config.ts applies to its tests).
export default defineConfig({
  test: {
    projects: ['packages/*'],
  },
});
