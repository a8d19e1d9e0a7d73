import { packageBuild } from '../../tsup.shared';

// Two entries: the portable API, and `@rs/report/node` (reads the vega builds from node_modules;
// `shims` gives the CJS build an `import.meta.url` for module resolution).
export default packageBuild({ entry: ['src/index.ts', 'src/node.ts'], shims: true });
