// The README's character transformer trained on native and on wasm in one run, one after the
// other (never side by side, so neither slows the other): the wall time each takes to bring the
// validation loss below the target. Issue 20 asks native to take at most half of wasm's time.
//
//   pnpm bench char-transformer-race
//
// Each backend runs examples/char-transformer/index.mjs in its own process with the same seed,
// batches and evaluation windows; the time is the `seconds` of the first evaluation below the
// target (training time only: evaluation and start-up excluded, as the example reports it).
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { writeResult } from './lib/results.mjs';

// Settings, fixed before the reported run.
const SETTINGS = { target: 2.0, seed: 0, steps: 1200, evalEvery: 100, minutes: 14, order: ['native', 'wasm'] };

const example = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'char-transformer', 'index.mjs');
const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
const runs = {};
for (const backend of SETTINGS.order) {
  const args = [example, '--backend', backend, '--seed', String(SETTINGS.seed), '--steps', String(SETTINGS.steps), '--eval-every', String(SETTINGS.evalEvery), '--minutes', String(SETTINGS.minutes), '--length', '0'];
  const child = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (child.status !== 0) {
    console.error(child.stdout, child.stderr);
    throw new Error(`char-transformer-race: the ${backend} run failed (exit ${child.status}).`);
  }
  const curve = [...child.stdout.matchAll(/step (\d+) \((\d+) s\): train loss ([\d.]+), validation loss ([\d.]+)/g)].map((m) => ({ step: Number(m[1]), seconds: Number(m[2]), validation: Number(m[4]) }));
  const hit = curve.find((p) => p.validation < SETTINGS.target);
  runs[backend] = { curve, reached: hit ?? null, loadAfter: loadavg().map((l) => Number(l.toFixed(2))) };
  console.log(`${backend}: ${hit ? `below ${SETTINGS.target} at step ${hit.step} after ${hit.seconds} s` : `not below ${SETTINGS.target} in ${SETTINGS.steps} steps`}`);
}
const native = runs.native.reached;
const wasm = runs.wasm.reached;
writeResult(
  'char-transformer-race',
  {
    native_seconds: native?.seconds ?? null,
    wasm_seconds: wasm?.seconds ?? null,
    native_over_wasm_time: native && wasm ? native.seconds / wasm.seconds : null,
    native_step: native?.step ?? null,
    wasm_step: wasm?.step ?? null,
    load_avg_1m: loadBefore[0],
  },
  { settings: SETTINGS, loadavgBefore: loadBefore, runs, note: 'Seconds of training (the example excludes evaluation) to the first evaluation below the target; both backends in one run, sequentially.' },
);
