import { packageBuild } from '../../tsup.shared';

// Two entries: the portable API, and `@rs/nas/node` (checkpoint files, worker threads).
export default packageBuild({ entry: ['src/index.ts', 'src/node.ts'] });
