import { packageBuild } from '../../tsup.shared';

// Node only (koffi and node:fs locate and load the compiled library); shims give the CJS build
// an import.meta.url, which locates the package's files.
export default packageBuild({ platform: 'node', shims: true });
