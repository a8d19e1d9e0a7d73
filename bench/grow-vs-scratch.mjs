// grow-vs-scratch: a small LeNet-style MLP (784-64-32-10) grown on validation plateaus with
// Net2WiderNet (@rs/grow) up to the size of the large one (784-256-128-10), vs the large network
// trained from scratch. Training FLOPs are counted per step as 3 x forward FLOPs x batch rows
// (forward + backward), from the model's own FLOP count at that step.
// summary.flop_ratio = grown / scratch; accuracies on the 2,000 held-out digits.
import { tf, Model, lenet300100, fit, evaluate, adam } from '@rs/core';
import { growOnPlateau } from '@rs/grow';
import { loadMnist } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';

await selectBackend(process.argv[2] ?? 'wasm');
const mnist = loadMnist();
// Validation for growth decisions: the last 1,000 training digits (the test digits stay unseen).
const all = { x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]), y: tf.tensor1d(mnist.train.y, 'int32') };
const train = { x: tf.slice(all.x, 0, 7000), y: tf.slice(all.y, 0, 7000) };
const validation = { x: tf.slice(all.x, 7000, 1000), y: tf.slice(all.y, 7000, 1000) };
const test = { x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]), y: tf.tensor1d(mnist.test.y, 'int32') };
const BATCH = 128;
// The small network is cheap, so it trains for more epochs and still spends fewer FLOPs.
const GROWN_EPOCHS = 30;
const flopCounter = () => {
  const counter = { flops: 0, onStepEnd: (info) => void (counter.flops += 3 * info.model.counts().flops * BATCH) };
  return counter;
};

const scratch = Model.create(lenet300100({ hidden: [256, 128] }), { seed: 0 });
const scratchFlops = flopCounter();
await fit(scratch, train, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 2e-3 }), epochs: 20, batchSize: BATCH, callbacks: [scratchFlops] });
const accuracyScratch = evaluate(scratch, test).accuracy;

const grown = Model.create(lenet300100({ hidden: [64, 32] }), { seed: 0 });
const grownFlops = flopCounter();
const batch = { x: tf.slice(train.x, 0, 512), y: tf.slice(train.y, 0, 512) };
const grow = growOnPlateau({ groups: ['fc1', 'fc2'], step: 64, patience: 1, minDelta: 0.002, method: 'net2net', budget: { params: scratch.counts().params }, batch });
await fit(grown, train, {
  loss: 'softmaxCrossEntropy',
  optimizer: adam({ learningRate: 2e-3 }),
  epochs: GROWN_EPOCHS,
  batchSize: BATCH,
  validation,
  callbacks: [grownFlops, grow],
});
const accuracyGrown = evaluate(grown, test).accuracy;
writeResult(
  'grow-vs-scratch',
  {
    flop_ratio: grownFlops.flops / scratchFlops.flops,
    accuracy_grown: accuracyGrown,
    accuracy_scratch: accuracyScratch,
    grown_params: grown.counts().params,
    scratch_params: scratch.counts().params,
  },
  {
    growth: grow.history,
    final_widths: [grown.group('fc1').size, grown.group('fc2').size],
    training_flops: { grown: grownFlops.flops, scratch: scratchFlops.flops },
    protocol: 'scratch 20 epochs, grown ' + GROWN_EPOCHS + ' epochs (growth steps of 64 units on plateaus, patience 1), Adam 2e-3, batch 128, 7,000 train digits; growth decisions on 1,000 validation digits; accuracy on the 2,000 test digits.',
  },
);
