// nas-darts-s2: DARTS' skip-connection collapse and its mitigation on MNIST, in RobustDARTS'
// space S2 (Zela et al. 2020: every edge chooses between skip_connect and a 3x3 convolution).
// It runs examples/nas/darts-mnist.mjs (vanilla DARTS and DARTS with P-DARTS' dropout on the skip
// candidate, rate 0.3, in the same run; each discretized, retrained from scratch on the 8,000
// training digits for 4 epochs and tested on the 2,000 test digits) and writes
// bench/results/nas-darts-s2.json: summary skip_vanilla, skip_mitigated (of 24 edges),
// accuracy_vanilla, accuracy_mitigated, search_seconds.
//
// Declared 2026-12-06, before the first run with --seed: the settings of the one-seed run in
// docs/nas.md (bench/results/nas-darts-mnist-s2.json): four stacked cells of 8 channels after a
// stride-4 stem, 500 digits for the weights and 500 others for alpha, alpha Adam 3e-3, 1,200
// first-order steps of batch 32, wasm with 1 thread; seeds 0, 1, 2 (about 12 minutes each):
//   pnpm bench seeds nas-darts-s2 --seeds 0,1,2
// The claim's rule (scripts/results-claims.mjs): on every seed the mitigated search keeps fewer
// skip connections than vanilla DARTS, and vanilla DARTS collapses on the mean (at least half of
// the 24 edges end as skip connections).
//   pnpm bench nas-darts-s2 [--seed 0] [any other option of the example]
import { runExample, withDefaults } from './lib/example.mjs';

const passed = process.argv.slice(2);
if (passed.includes('--out')) {
  console.error('nas-darts-s2: writes bench/results/nas-darts-s2.json; run the example itself for --out');
  process.exit(2);
}
const defaults = { '--steps': '1200', '--cells': '4', '--stem-stride': '4', '--split': '500', '--arch-lr': '3e-3', '--candidates': 'skip_connect,nor_conv_3x3', '--threads': '1' };
runExample('nas/darts-mnist.mjs', [...withDefaults(passed, defaults), '--out', 'nas-darts-s2']);
