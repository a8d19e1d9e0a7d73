// dynamic-slimmable: a slimmable MNIST MLP (784-256-256-10 with batchNorm) trained once with the
// sandwich rule over widths {0.25, 0.5, 0.75, 1} (Yu et al. 2019; Yu & Huang 2019), per-width
// normalization statistics, units ordered by importance (L1) with core's permuteUnits after one
// full-width epoch; compared at every width with a network of that width trained alone for the
// same number of epochs, in the same run, on the 2,000 test digits. After training, both arms get
// exact batchNorm statistics per width (post-training calibration).
//   summary.max_gap = max over widths of (separate - slimmable) test accuracy, in points.
//   pnpm bench dynamic-slimmable [--backend wasm|cpu] [--epochs 4]
// Reference: Yu et al. 2019 (Slimmable Neural Networks, ICLR), Table 1: slimmable MobileNets
// within about 1 point of individually trained ones on ImageNet.
import { parseArgs } from 'node:util';
import { tf, Model, adam, trainStep, softmaxCrossEntropy } from '@rs/core';
import { Slimmable } from '@rs/dynamic';
import { loadMnist } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    epochs: { type: 'string', default: '4' },
    seed: { type: 'string', default: '0' },
  },
});
const backend = await selectBackend(args.backend);
const started = performance.now();
const widths = [0.25, 0.5, 0.75, 1];
const hidden = 256;
const mlp = (h) => ({
  inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }],
  nodes: [
    { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: h } },
    { id: 'bn1', op: 'batchNorm', inputs: ['fc1'], attrs: {} },
    { id: 'relu1', op: 'relu', inputs: ['bn1'], attrs: {} },
    { id: 'fc2', op: 'dense', inputs: ['relu1'], attrs: { units: h } },
    { id: 'bn2', op: 'batchNorm', inputs: ['fc2'], attrs: {} },
    { id: 'relu2', op: 'relu', inputs: ['bn2'], attrs: {} },
    { id: 'fc3', op: 'dense', inputs: ['relu2'], attrs: { units: 10 } },
  ],
  outputs: ['fc3'],
});
const mnist = loadMnist();
const trainX = tf.tensor2d(mnist.train.x, [mnist.train.count, 784]);
const trainY = tf.tensor1d(mnist.train.y, 'int32');
const testX = tf.tensor2d(mnist.test.x, [mnist.test.count, 784]);
const epochs = Number(args.epochs);
const batchSize = 128;
const learningRate = 2e-3;

function batches(epoch, body) {
  let s = 7 + epoch * 104729;
  const order = Array.from({ length: mnist.train.count }, (_, i) => i)
    .map((v) => [(s = (s * 48271) % 2147483647), v])
    .sort((a, b) => a[0] - b[0])
    .map((p) => p[1]);
  for (let b = 0; b + batchSize <= order.length; b += batchSize) {
    const idx = tf.tensor1d(order.slice(b, b + batchSize), 'int32');
    const xb = tf.gather(trainX, idx);
    const yb = tf.gather(trainY, idx);
    body(xb, yb);
    tf.dispose([idx, xb, yb]);
  }
}

// One network, all widths: one full-width epoch, order units by importance, then the sandwich rule.
const model = Model.create(mlp(hidden), { seed: Number(args.seed) });
const warm = adam({ learningRate });
batches(0, (x, y) => trainStep(model, [x], y, softmaxCrossEntropy, warm));
const slim = new Slimmable(model, { widths, groups: ['fc1', 'fc2'], seed: Number(args.seed) });
slim.orderByImportance();
model.resetOptimizerState();
const optimizer = adam({ learningRate });
for (let epoch = 1; epoch < epochs; epoch++) {
  batches(epoch, (x, y) => slim.step(x, y, optimizer, { randomWidths: 2 }));
  console.log(`slimmable epoch ${epoch + 1}/${epochs}: ${widths.map((w) => `${w}: ${(100 * slim.accuracy(testX, mnist.test.y, w)).toFixed(2)}%`).join(', ')} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
}
// Post-training normalization statistics (Yu & Huang 2019): exact per-width batchNorm moments on
// 2,000 training digits, for the slimmable network and, alike, for every separate network.
const calibrationX = tf.slice(trainX, 0, 2000);
slim.recalibrate(calibrationX);
const table = [];
for (const w of widths) {
  const units = Math.ceil(w * hidden);
  const alone = Model.create(mlp(units), { seed: Number(args.seed) + 1 });
  const single = new Slimmable(alone, { widths: [1], groups: ['fc1', 'fc2'] });
  const opt = adam({ learningRate });
  for (let epoch = 0; epoch < epochs; epoch++) batches(epoch, (x, y) => single.step(x, y, opt));
  single.recalibrate(calibrationX);
  const row = { width: w, units, slimmable: 100 * slim.accuracy(testX, mnist.test.y, w), separate: 100 * single.accuracy(testX, mnist.test.y, 1) };
  row.gap = row.separate - row.slimmable;
  table.push(row);
  console.log(`width ${w} (${units}-${units}): slimmable ${row.slimmable.toFixed(2)}%, separately trained ${row.separate.toFixed(2)}% (gap ${row.gap.toFixed(2)} pt)`);
  single.dispose();
  alone.dispose();
}
writeResult(
  'dynamic-slimmable',
  { max_gap: Math.max(...table.map((r) => r.gap)), within_1pt: table.every((r) => r.gap <= 1), widths: widths.length, backend },
  {
    reference: 'Yu et al. 2019, Slimmable Neural Networks (ICLR), Table 1: slimmable networks within about 1 point of individually trained ones.',
    setup: { model: '784-256-256-10 MLP with batchNorm', train: mnist.train.count, test: mnist.test.count, epochs, batchSize, learningRate, sandwich: 'max + min + 2 random of the trained widths per step', importance: 'L1 of incoming weights, after 1 full-width epoch', statistics: 'exact per-width batchNorm moments on 2,000 training digits after training (both arms)' },
    table,
    seconds: (performance.now() - started) / 1000,
  },
);
slim.dispose();
model.dispose();
tf.dispose([trainX, trainY, testX, calibrationX]);
if (backend === 'wasm') tf.removeBackend('wasm');
