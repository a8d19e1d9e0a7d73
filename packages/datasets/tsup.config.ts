import { packageBuild } from '../../tsup.shared';

// Node only (the data sets are read from dependencies with node:fs); shims give the CJS build
// an import.meta.url.
export default packageBuild({ platform: 'node', shims: true });
