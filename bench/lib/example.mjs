// Benchmarks that wrap an example script: the example's arguments with the benchmark's
// declared defaults, and the example run in a child process.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** `passed` with every `--option value` of `defaults` that `passed` does not give. */
export function withDefaults(passed, defaults) {
  return [...Object.entries(defaults).filter(([option]) => !passed.includes(option)).flat(), ...passed];
}

/** Runs `examples/<script>` with `args` (output shown); exits with its status when it fails. */
export function runExample(script, args) {
  const run = spawnSync(process.execPath, [join(root, 'examples', script), ...args], { stdio: 'inherit' });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
