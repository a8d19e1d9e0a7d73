import { packageBuild } from '../../tsup.shared';

// worker.ts is the entry of the forked process that prepares changes (src/worker-pool.ts).
export default packageBuild({ entry: ['src/index.ts', 'src/worker.ts'], shims: true });
