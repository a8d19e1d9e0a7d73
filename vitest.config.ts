import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// One run over every package (each package's own vitest.config.ts applies to its tests), the
// browser example's end-to-end test (headless Chromium) and the repository scripts' tests.
// Every core runs a test file: vitest's default in a run is one fewer than the cores, a single
// worker on a 2-core machine, while many tests wait on browsers, Redis or child processes.
export default defineConfig({
  test: {
    projects: ['packages/*', 'examples/browser', 'examples/deploy', 'scripts/vitest.config.mjs'],
    maxWorkers: Math.max(2, availableParallelism()),
  },
});
