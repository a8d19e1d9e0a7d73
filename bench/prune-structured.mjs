// prune-structured: remove 75% of LeNet-300-100's hidden units (300-100 -> 75-25) by L1 group
// importance, fine-tune, and measure inference latency at batch 256 on wasm against the dense
// model in the same run. speedup = dense ms / pruned ms; flop_ratio = dense FLOPs / pruned FLOPs;
// efficiency = speedup / flop_ratio.
import { tf, Model, lenet300100, fit, evaluate, adam } from '@rs/core';
import { pruneUnits } from '@rs/prune';
import { loadMnist } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';

const backend = process.argv[2] ?? 'wasm';
await selectBackend(backend);
const mnist = loadMnist();
const train = { x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]), y: tf.tensor1d(mnist.train.y, 'int32') };
const test = { x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]), y: tf.tensor1d(mnist.test.y, 'int32') };
const options = (epochs, learningRate) => ({ loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate }), epochs, batchSize: 128 });

const dense = Model.create(lenet300100(), { seed: 0 });
await fit(dense, train, options(20, 2e-3));
const denseAccuracy = evaluate(dense, test).accuracy;

const pruned = Model.create(lenet300100(), { seed: 0 });
await fit(pruned, train, options(20, 2e-3));
pruneUnits(pruned, { fraction: 0.75, score: 'l1', groups: ['fc1', 'fc2'], reason: 'remove 75% of hidden units' });
const beforeFineTune = evaluate(pruned, test).accuracy;
pruned.resetOptimizerState();
await fit(pruned, train, options(10, 1e-3));
const prunedAccuracy = evaluate(pruned, test).accuracy;

// Latency: batch of 256 test digits, forward pass with the result read back; rounds alternate
// between the two models and the median of per-round ratios is reported.
const batch = tf.slice(test.x, 0, 256);
const time = (model, reps) => {
  const start = performance.now();
  for (let i = 0; i < reps; i++) {
    const out = model.apply(batch);
    out.dataSync();
    out.dispose();
  }
  return (performance.now() - start) / reps;
};
for (let i = 0; i < 20; i++) {
  time(dense, 1);
  time(pruned, 1);
}
const ratios = [];
const denseTimes = [];
const prunedTimes = [];
for (let round = 0; round < 40; round++) {
  const d = time(dense, 10);
  const p = time(pruned, 10);
  denseTimes.push(d);
  prunedTimes.push(p);
  ratios.push(d / p);
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const speedup = median(ratios);
const flopRatio = dense.counts().flops / pruned.counts().flops;
writeResult(
  'prune-structured',
  {
    speedup,
    flop_ratio: flopRatio,
    efficiency: speedup / flopRatio,
    dense_ms: median(denseTimes),
    pruned_ms: median(prunedTimes),
    dense_accuracy: denseAccuracy,
    pruned_accuracy_before_finetune: beforeFineTune,
    pruned_accuracy: prunedAccuracy,
  },
  {
    backend: tf.getBackend(),
    batch: 256,
    dense: { params: dense.counts().params, flops: dense.counts().flops, widths: [300, 100] },
    pruned: { params: pruned.counts().params, flops: pruned.counts().flops, widths: [pruned.group('fc1').size, pruned.group('fc2').size] },
    journal: pruned.journal,
  },
);
