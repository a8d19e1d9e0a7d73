// Runs every package's tests in one vitest run and ends with the plain summary line
// `N passed, N failed` that CI reads.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { ensureChromium } from './ensure-chromium.mjs';
import { ensureRuntimes } from './ensure-runtimes.mjs';

// The browser tests read CHROMIUM_PATH; find (or install) Chromium before any test starts.
process.env.CHROMIUM_PATH = ensureChromium();
// The cross-runtime test reads BUN_PATH and DENO_PATH; install them from npm when missing.
const runtimes = ensureRuntimes();
process.env.BUN_PATH = runtimes.bun;
process.env.DENO_PATH = runtimes.deno;

const results = '.vitest-results.json';
rmSync(results, { force: true });
const run = spawnSync('pnpm', ['exec', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile=${results}`, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
let passed = 0;
let failed = 0;
try {
  const json = JSON.parse(readFileSync(results, 'utf8'));
  passed = json.numPassedTests;
  failed = json.numFailedTests + (json.numFailedTestSuites ?? 0);
} catch {
  failed = Math.max(failed, 1);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 && passed > 0 ? 0 : 1);
