import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// One run over every package's tests, the browser and deployment examples' tests (headless
// Chromium, Bun, Deno) and the repository scripts' tests.
// - The packages and examples form one project with the shared settings (vitest.shared.ts:
//   sources through the `@rs/source` condition, a worker's test files share one module graph).
//   As one project, a worker loads tfjs-core and the sources once for all of them; as one
//   project per package (each package's own vitest.config.ts, used by `pnpm test` inside a
//   package) every package's files loaded them again in their own workers.
// - Every core runs a test file: vitest's default in a run is one fewer than the cores, a single
//   worker on a 2-core machine, while many tests wait on browsers, Redis or child processes.
export default defineConfig({
  test: {
    projects: [
      {
        extends: './vitest.shared.ts',
        test: {
          name: 'rs',
          include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'examples/browser/test/**/*.test.ts', 'examples/deploy/test/**/*.test.ts'],
          // The queue tests (@rs/nas-queue, @rs/cli's `rs search --queue`) get a private Redis server.
          globalSetup: ['./scripts/redis-global-setup.mjs'],
        },
      },
      'scripts/vitest.config.mjs',
    ],
    maxWorkers: Math.max(2, availableParallelism()),
  },
});
