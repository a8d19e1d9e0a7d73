// prune-mnist: the pruning example (examples/prune/index.mjs) as a benchmark: LeNet-300-100 on
// MNIST (8,000 train / 2,000 test digits) against the dense network of the same run, three ways:
// magnitude pruning with retraining (Han et al. 2015), the lottery ticket with its random re-init
// control (Frankle & Carbin 2019) and SNIP at initialisation (Lee et al. 2019). It runs the
// example in a child process and writes bench/results/prune-mnist.json with one summary:
//   dense_accuracy; magnitude_removed (fraction of parameters), magnitude_accuracy,
//   magnitude_drop_points; lottery_remaining (weights left after the last round),
//   lottery_accuracy, lottery_drop_points, lottery_control_gap_points (ticket - re-init, last
//   round), lottery_matching_down_to (the fewest weights left at which the ticket is still within
//   0.5 points of dense, or 1 when no round is); snip_sparsity, snip_accuracy, snip_drop_points.
// Accuracies are fractions, drops and gaps in points.
//
// Declared 2026-12-05 (night), before the first run: 15 lottery rounds (20% of the hidden layers'
// weights per round, 10% of the output layer's: 0.8^15 = 3.5% of the hidden weights, 3.6% of all,
// the sparsity down to which Frankle & Carbin report LeNet tickets matching the dense network),
// the example's other defaults (20 epochs, lottery rounds of 10, SNIP at 95%), wasm, seeds 0-4:
//   pnpm bench seeds prune-mnist
//   pnpm bench prune-mnist [--seed 0] [--rounds 15] [any other option of the example]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { writeResult } from './lib/results.mjs';
import { runExample, withDefaults } from './lib/example.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const passed = process.argv.slice(2);
if (passed.includes('--only')) {
  console.error('prune-mnist: runs all three parts; run the example itself for --only');
  process.exit(2);
}
const backendAt = passed.indexOf('--backend');
const backend = backendAt < 0 ? 'wasm' : passed[backendAt + 1];
const args = withDefaults(passed, { '--backend': backend, '--rounds': '15' });
runExample('prune/index.mjs', args);

const example = JSON.parse(readFileSync(join(here, 'results', `prune-mnist-${backend}.json`), 'utf8'));
const { dense, magnitude, lottery, snip } = example;
const within = (accuracy) => accuracy >= dense - 0.005;
const matching = lottery.rows.filter((r) => within(r.accuracy)).map((r) => r.remaining);
writeResult(
  'prune-mnist',
  {
    dense_accuracy: dense,
    magnitude_removed: magnitude.weightsRemoved,
    magnitude_accuracy: magnitude.afterMaterialize,
    magnitude_drop_points: 100 * magnitude.drop,
    lottery_remaining: lottery.final.remaining,
    lottery_accuracy: lottery.final.accuracy,
    lottery_drop_points: 100 * lottery.drop,
    lottery_control_gap_points: 100 * lottery.controlGap,
    lottery_matching_down_to: matching.length ? Math.min(...matching) : 1,
    snip_sparsity: snip.sparsity,
    snip_accuracy: snip.accuracy,
    snip_drop_points: 100 * snip.drop,
    backend,
  },
  { arguments: args, seed: example.seed, seconds: example.seconds, magnitude: { rows: magnitude.rows, materialized: magnitude.materialized }, lottery: { rows: lottery.rows, epochs: lottery.epochs }, snip: { perLayer: snip.perLayer, epochs: snip.epochs } },
);
