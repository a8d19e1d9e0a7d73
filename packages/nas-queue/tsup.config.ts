import { packageBuild } from '../../tsup.shared';

// Two entries: the API, and the worker command (`rs-nas-worker`).
export default packageBuild({ entry: ['src/index.ts', 'src/bin.ts'], platform: 'node', shims: true });
