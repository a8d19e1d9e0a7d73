// `pnpm bench <name> [args]`: runs bench/<name>.mjs (built packages; the root script builds first).
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const [name, ...rest] = process.argv.slice(2);
const available = readdirSync(here).filter((f) => f.endsWith('.mjs') && f !== 'run.mjs').map((f) => f.replace(/\.mjs$/, ''));
if (!name || !existsSync(join(here, `${name}.mjs`))) {
  console.error(`usage: pnpm bench <name>   (available: ${available.join(', ') || 'none'})`);
  process.exit(2);
}
const result = spawnSync(process.execPath, [join(here, `${name}.mjs`), ...rest], { stdio: 'inherit' });
process.exit(result.status ?? 1);
