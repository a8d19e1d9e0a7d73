import { packageBuild } from '../../tsup.shared';

// shims: import.meta.url in the CJS build (the Node loader finds the wasm runtime's files with it).
// runtime: the inference-only entry (src/runtime.ts), @rs/backend-wasm/runtime.
export default packageBuild({ entry: ['src/index.ts', 'src/runtime.ts'], shims: true });
