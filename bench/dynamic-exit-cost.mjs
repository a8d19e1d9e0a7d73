// dynamic-exit-cost: where the time of the B-LeNet trunk goes on this backend. Untrained weights
// (timing only): full network vs everything up to and including the branch (all rows exit at
// the branch: confidence threshold 0), batch 500, same executor, alternating rounds.
//   pnpm bench dynamic-exit-cost [--backend wasm|cpu]
import { parseArgs } from 'node:util';
import { tf, Model } from '@rs/core';
import { addExit, earlyExitPredict } from '@rs/dynamic';
import { selectBackend } from './lib/backends.mjs';
import { writeResult, timeIt } from './lib/results.mjs';
import { bLenetGraph } from './lib/b-lenet.mjs';

const { values: args } = parseArgs({ options: { backend: { type: 'string', default: 'wasm' } } });
const backend = await selectBackend(args.backend);
const model = Model.create(bLenetGraph(), { seed: 0 });
addExit(model, { at: 'pool1', classes: 10 });
const x = tf.randomUniform([500, 28, 28, 1], 0, 1, 'float32', 1);
const sync = (t) => { t.dataSync(); t.dispose(); };
const variants = {
  full: () => sync(model.apply(x, { targets: ['fc2'] })),
  uptoPool1: () => sync(model.apply(x, { targets: ['pool1'] })),
  allExitAtBranch: () => sync(earlyExitPredict(model, x, { rule: 'confidence', thresholds: 0 }).logits),
  noneExit: () => sync(earlyExitPredict(model, x, { rule: 'confidence', thresholds: 1 }).logits),
};
const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let round = 0; round < 3; round++) for (const [k, f] of Object.entries(variants)) times[k].push((await timeIt(f, { warmup: 2, repeats: 5 })).median);
const med = (a) => [...a].sort((p, q) => p - q)[1];
const ms = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, med(v)]));
const counts = model.counts();
writeResult('dynamic-exit-cost', {
  full_ms: ms.full, upto_pool1_ms: ms.uptoPool1, all_exit_ms: ms.allExitAtBranch, none_exit_ms: ms.noneExit,
  max_speedup: ms.full / ms.allExitAtBranch, overhead_none_exit: ms.noneExit / ms.full, backend,
}, { batch: 500, timesMs: times, flopsPerDigit: counts.flops, perNode: counts.perNode.map((c) => ({ node: c.node, flops: c.flops })) });
x.dispose();
model.dispose();
if (backend === 'wasm') tf.removeBackend('wasm');
