import { packageBuild } from '../../tsup.shared';

// shims: import.meta.url in the CJS build (the Node loader finds the wasm runtime's files with it).
export default packageBuild({ shims: true });
