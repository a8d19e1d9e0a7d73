// moe-mnist: the Switch comparison on MNIST (8,000 train / 2,000 test real digits from
// @rs/datasets) with an MLP: x -> fc1(784->64) -> relu -> [FFN block] + residual -> head(10),
// where the FFN block is either a dense FFN 64->h->64 or a Switch MoE layer with 8 experts of
// the same width h (same active FLOPs per example, up to the router). Same epochs, batches and
// seeds; writes bench/results/moe-mnist.json with test loss/accuracy per seed and curves.
//   pnpm bench moe-mnist [--epochs 4] [--seeds 3] [--hidden 64]
import { parseArgs } from 'node:util';
import { tf, Model, createOpRegistry, fit, evaluate, adam } from '@rs/core';
import { registerMoe, moeMetrics } from '@rs/moe';
import { loadMnist } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    epochs: { type: 'string', default: '4' },
    seeds: { type: 'string', default: '3' },
    hidden: { type: 'string', default: '64' },
    experts: { type: 'string', default: '8' },
  },
});
await selectBackend(args.backend);
const hidden = Number(args.hidden);
const experts = Number(args.experts);
const mnist = loadMnist();
const train = { x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]), y: tf.tensor1d(mnist.train.y, 'int32') };
const test = { x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]), y: tf.tensor1d(mnist.test.y, 'int32') };
const registry = registerMoe(createOpRegistry());

function graph(block) {
  const ffn =
    block === 'dense'
      ? [
          { id: 'ffn1', op: 'dense', inputs: ['relu1'], attrs: { units: hidden } },
          { id: 'ffn_relu', op: 'relu', inputs: ['ffn1'], attrs: {} },
          { id: 'ffn2', op: 'dense', inputs: ['ffn_relu'], attrs: { units: 64 } },
        ]
      : [{ id: 'ffn2', op: 'moe', inputs: ['relu1'], attrs: { experts, hidden, routing: 'switch', capacityFactor: 1.25 } }];
  return {
    inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }],
    nodes: [
      { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 64 } },
      { id: 'relu1', op: 'relu', inputs: ['fc1'], attrs: {} },
      ...ffn,
      { id: 'res', op: 'add', inputs: ['relu1', 'ffn2'], attrs: {} },
      { id: 'head', op: 'dense', inputs: ['res'], attrs: { units: 10 } },
    ],
    outputs: ['head'],
  };
}

const runs = [];
for (let seed = 0; seed < Number(args.seeds); seed++) {
  for (const variant of ['dense', 'switch']) {
    const model = Model.create(graph(variant), { registry, seed });
    let last = {};
    const started = performance.now();
    const history = await fit(model, train, {
      loss: 'softmaxCrossEntropy',
      optimizer: adam({ learningRate: 0.002 }),
      epochs: Number(args.epochs),
      batchSize: 64,
      seed,
      validation: test,
      callbacks: [{ onStepEnd: (info) => (last = info.metrics) }],
    });
    const seconds = (performance.now() - started) / 1000;
    const result = evaluate(model, test);
    const routing = variant === 'switch' ? moeMetrics(last, 'ffn2') : undefined;
    runs.push({
      variant,
      seed,
      testLoss: result.loss,
      testAccuracy: result.accuracy,
      seconds,
      params: model.counts().params,
      flops: model.counts().flops,
      curve: history.epochs.map((e) => ({ epoch: e.epoch + 1, train: e.loss, testLoss: e.valLoss, testAccuracy: e.valAccuracy })),
      routing: routing && { imbalance: routing.imbalance, dropped: routing.dropped, loads: routing.loads },
    });
    console.log(`seed ${seed} ${variant}: test loss ${result.loss.toFixed(4)}, accuracy ${(100 * result.accuracy).toFixed(2)}% (${seconds.toFixed(0)} s)`);
    model.dispose();
  }
}
const mean = (xs) => xs.reduce((s, v) => s + v, 0) / xs.length;
const of = (v) => runs.filter((r) => r.variant === v);
writeResult(
  'moe-mnist',
  {
    dense_test_loss: mean(of('dense').map((r) => r.testLoss)),
    switch_test_loss: mean(of('switch').map((r) => r.testLoss)),
    dense_accuracy: mean(of('dense').map((r) => r.testAccuracy)),
    switch_accuracy: mean(of('switch').map((r) => r.testAccuracy)),
    switch_wins: `${of('switch').filter((r, i) => r.testLoss < of('dense')[i].testLoss).length}/${of('switch').length}`,
  },
  { backend: tf.getBackend(), setup: { epochs: Number(args.epochs), batchSize: 64, hidden, experts, learningRate: 0.002, data: mnist.source }, runs },
);
if (tf.getBackend() === 'wasm') tf.removeBackend('wasm');
