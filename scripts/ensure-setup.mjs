// Makes the README's two commands work on a fresh machine that has only Node and npm:
// installs pnpm with npm (corepack's download fails its signature check on some machines),
// then installs the workspace from the frozen lockfile if it is not installed yet.
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const PNPM_VERSION = '9.15.9';
const run = (command) => execSync(command, { stdio: 'inherit' });
const has = (command) => {
  try {
    execSync(command, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

if (!has('pnpm --version')) {
  console.log(`[setup] installing pnpm@${PNPM_VERSION} with npm`);
  run(`npm install --global pnpm@${PNPM_VERSION}`);
}
if (!existsSync('node_modules/.modules.yaml')) {
  console.log('[setup] installing the workspace (frozen lockfile)');
  // onnxruntime-node's CPU binaries come in its npm package; never fetch CUDA ones.
  process.env.ONNXRUNTIME_NODE_INSTALL = 'skip';
  run('pnpm install --frozen-lockfile');
}
