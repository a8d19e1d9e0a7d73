import { packageBuild } from '../../tsup.shared';

// The CLI is Node-only. bin.ts keeps its `#!/usr/bin/env node` line (esbuild preserves an
// entry's hashbang); shims give the CJS build an import.meta.url (for the version).
export default packageBuild({ entry: ['src/index.ts', 'src/bin.ts', 'src/serve-setup.ts'], platform: 'node', shims: true });
