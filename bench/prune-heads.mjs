// prune-heads: the head-pruning example (examples/prune/heads.mjs) as a benchmark. The Moby Dick
// character transformer (2 layers, width 128, 4 heads, context 64) is trained a fixed number of
// steps; its heads are removed from the least important up without fine-tuning (each layer keeps
// one), ranked by Michel et al.'s gate importance E|dL/d xi_h|, and compared at every count of
// heads removed with the mean of 20 random removal orders. It runs the example in a child process
// and writes bench/results/prune-heads.json with one summary:
//   base_loss; half_heads_removed_loss, increase (4 of 8 heads, gate order); random_half_loss;
//   taylor_group_half_loss, taylor_half_loss (the two other orders); gate_loss_removed_<k> and
//   random_loss_removed_<k> for k = 1..6 (validation loss, nats/char, gate order and the random
//   orders' mean); gate_beats_random_mean_every_count; counts_gate_below_random_mean (of 6).
//
// Declared 2026-12-06, before the first run of these settings: native backend, 3000 training
// steps (batch 16, Adam 3e-3), 20 random orders, gate score over mini-batches of 8 windows, the
// example's other defaults; seeds 0-4 (a run takes about 1.5 minutes):
//   pnpm bench seeds prune-heads
// The claim's rule (scripts/results-claims.mjs): on the mean over seeds, the gate order's loss is
// below the random orders' mean at every count of heads removed, 1 to 6.
//   pnpm bench prune-heads [--seed 0] [any other option of the example]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { writeResult } from './lib/results.mjs';
import { runExample, withDefaults } from './lib/example.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const passed = process.argv.slice(2);
if (passed.includes('--minutes') || passed.includes('--model')) {
  console.error('prune-heads: trains a fixed number of steps (--steps); run the example itself for --minutes or --model');
  process.exit(2);
}
const backendAt = passed.indexOf('--backend');
const backend = backendAt < 0 ? 'native' : passed[backendAt + 1];
const args = withDefaults(passed, { '--backend': backend, '--steps': '3000', '--random-orders': '20', '--score-batch': '8' });
runExample('prune/heads.mjs', args);

const example = JSON.parse(readFileSync(join(here, 'results', `prune-heads-${backend}.json`), 'utf8'));
const perCount = {};
for (const c of example.counts.slice(1)) {
  perCount[`gate_loss_removed_${c.removed}`] = c.gate;
  perCount[`random_loss_removed_${c.removed}`] = c.randomMean;
}
writeResult(
  'prune-heads',
  { ...example.summary, ...perCount, backend },
  { arguments: args, seed: example.seed, training: example.training, config: example.config, counts: example.counts, headScores: example.headScores, curves: example.curves, randomCurves: example.randomCurves },
);
