// The cross-runtime test (examples/deploy) runs the same models in Bun and Deno. Both come from
// the npm registry: the `bun` and `deno` packages are devDependencies of examples/deploy, and
// their binaries arrive inside npm packages (optional dependencies per platform), so
// `pnpm install` installs them with nothing fetched from elsewhere. `npm test` calls this
// first: it finds both binaries, runs `pnpm install` once when one is missing, and otherwise
// stops with a message that says how to get them.
import { execFileSync, execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const deploy = join(dirname(fileURLToPath(import.meta.url)), '../examples/deploy');

/** Where each runtime's binary is once its npm package is installed. */
const BINARIES = {
  bun: join(deploy, 'node_modules/bun/bin/bun.exe'),
  deno: join(deploy, 'node_modules/deno/deno'),
};

/** `{ bun, deno }` paths of working binaries (BUN_PATH / DENO_PATH win), or the problems. */
export function findRuntimes() {
  const found = {};
  const problems = [];
  for (const [name, path] of Object.entries(BINARIES)) {
    const chosen = process.env[`${name.toUpperCase()}_PATH`] ?? path;
    if (!existsSync(chosen)) {
      problems.push(`${name}: no binary at ${chosen}`);
      continue;
    }
    try {
      execFileSync(chosen, ['--version'], { stdio: 'ignore', timeout: 30_000 });
      found[name] = chosen;
    } catch (error) {
      problems.push(`${name}: ${chosen} --version failed (${error.message.split('\n')[0]})`);
    }
  }
  return { found, problems };
}

/** Finds (or installs) Bun and Deno; returns their paths, or exits with a message saying how. */
export function ensureRuntimes() {
  let { found, problems } = findRuntimes();
  if (problems.length === 0) return found;
  console.log(`[setup] installing Bun and Deno from npm for the cross-runtime test (${problems.join('; ')})`);
  try {
    execSync('pnpm install --frozen-lockfile --filter @rs/example-deploy', { stdio: ['ignore', 'ignore', 'inherit'], cwd: join(deploy, '../..') });
  } catch {
    // reported below
  }
  ({ found, problems } = findRuntimes());
  if (problems.length > 0) {
    console.error(
      `[setup] The cross-runtime test needs Bun and Deno from npm (devDependencies of examples/deploy): ${problems.join('; ')}.\n` +
        '        Run `pnpm install` (it installs the `bun` and `deno` npm packages and their platform binaries), or set BUN_PATH and DENO_PATH, then run `npm test` again.',
    );
    process.exit(1);
  }
  return found;
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(ensureRuntimes()));
