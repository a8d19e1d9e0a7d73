// Node side of the tests: the workspace packages' sources (the `@rs/source` condition), as in
// every package's tests. The page itself is built by vite.config.ts inside the e2e test.
export { default } from '../../vitest.shared';
