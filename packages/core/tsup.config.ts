import { readFileSync } from 'node:fs';
import { packageBuild } from '../../tsup.shared';

// The version each copy of @rs/core registers at load (src/instance.ts), for DUPLICATE_INSTANCE messages.
const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

export default packageBuild({
  entry: ['src/index.ts', 'src/extend.ts', 'src/testing.ts'],
  define: { __RS_CORE_VERSION__: JSON.stringify(version) },
});
