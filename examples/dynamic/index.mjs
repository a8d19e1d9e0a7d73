// Dynamic networks with @rs/dynamic on real MNIST digits (wasm backend by default):
//  1. early exit: attach an exit head (a journaled edit), train both exits jointly, calibrate a
//     confidence threshold to an accuracy target, run batched inference where confident digits
//     leave early and only the rest run the later layers;
//  2. slimmable widths: one set of weights that runs at widths 0.25 / 0.5 / 1;
//  3. conditional computation: a residual block behind a learned skip gate, computed only for
//     the digits whose gate is on.
//
//   pnpm --filter @rs/examples dynamic        (or: node examples/dynamic/index.mjs --backend cpu)
import { parseArgs } from 'node:util';
import { Model, tf, adam, useBackend } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm } from '@rs/backend-wasm';
import { loadMnist } from '@rs/datasets';
import { addExit, multiExitStep, calibrateThreshold, earlyExitPredict, exitOrder, Slimmable, addSkipGate, gatedStep, gatedPredict } from '@rs/dynamic';

const { values: args } = parseArgs({ options: { backend: { type: 'string', default: 'wasm' }, epochs: { type: 'string', default: '3' } } });
await installCpu({ activate: false });
if (args.backend === 'wasm') await installWasm({ activate: false });
await useBackend(args.backend);

const mnist = loadMnist();
const x = tf.tensor2d(mnist.train.x.subarray(0, 7000 * 784), [7000, 784]);
const y = tf.tensor1d(mnist.train.y.slice(0, 7000), 'int32');
const valX = tf.tensor2d(mnist.train.x.subarray(7000 * 784), [1000, 784]);
const valY = mnist.train.y.slice(7000);
const testX = tf.tensor2d(mnist.test.x, [mnist.test.count, 784]);
const testY = mnist.test.y;
const epochs = Number(args.epochs);
const eachBatch = (body) => {
  for (let s = 0; s + 100 <= 7000; s += 100) {
    const xb = tf.slice(x, s, 100);
    const yb = tf.slice(y, s, 100);
    body(xb, yb);
    tf.dispose([xb, yb]);
  }
};
const accuracy = (logits, labels) => {
  const p = tf.argMax(logits, -1);
  const hits = [...p.dataSync()].filter((v, i) => v === labels[i]).length;
  p.dispose();
  return hits / labels.length;
};

// 1. Early exit.
const graph = {
  inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }],
  nodes: [
    { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 128 } },
    { id: 'relu1', op: 'relu', inputs: ['fc1'], attrs: {} },
    { id: 'fc2', op: 'dense', inputs: ['relu1'], attrs: { units: 512 } },
    { id: 'relu2', op: 'relu', inputs: ['fc2'], attrs: {} },
    { id: 'fc3', op: 'dense', inputs: ['relu2'], attrs: { units: 512 } },
    { id: 'relu3', op: 'relu', inputs: ['fc3'], attrs: {} },
    { id: 'fc4', op: 'dense', inputs: ['relu3'], attrs: { units: 10 } },
  ],
  outputs: ['fc4'],
};
const model = Model.create(graph, { seed: 0 });
const exitId = addExit(model, { at: 'relu1', classes: 10 });
console.log(`exits in execution order: ${exitOrder(model).join(', ')}; journal: ${model.journal.map((e) => e.reason).join('; ')}`);
const optimizer = adam({ learningRate: 2e-3 });
for (let epoch = 0; epoch < epochs; epoch++) eachBatch((xb, yb) => multiExitStep(model, xb, yb, optimizer, [1, 0.5]));
const cal = calibrateThreshold(model, valX, valY, { rule: 'confidence', maxDrop: 0.003 });
console.log(`calibrated confidence threshold ${cal.threshold.toFixed(4)}: on validation ${(100 * cal.earlyExitRate).toFixed(1)}% exit early at ${(100 * cal.accuracy).toFixed(2)}% (full ${(100 * cal.fullAccuracy).toFixed(2)}%)`);
const result = earlyExitPredict(model, testX, { rule: 'confidence', thresholds: cal.threshold });
const rate = [...result.exitIndex].filter((e) => e === 0).length / testY.length;
console.log(`test: ${(100 * rate).toFixed(1)}% of digits left at '${exitId}', accuracy ${(100 * accuracy(result.logits, testY)).toFixed(2)}%`);
result.logits.dispose();
model.dispose();

// 2. Slimmable widths.
const bnGraph = {
  inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }],
  nodes: [
    { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 128 } },
    { id: 'bn1', op: 'batchNorm', inputs: ['fc1'], attrs: {} },
    { id: 'relu1', op: 'relu', inputs: ['bn1'], attrs: {} },
    { id: 'fc2', op: 'dense', inputs: ['relu1'], attrs: { units: 10 } },
  ],
  outputs: ['fc2'],
};
const slimModel = Model.create(bnGraph, { seed: 1 });
const slim = new Slimmable(slimModel, { widths: [0.25, 0.5, 1], groups: ['fc1'] });
const slimOptimizer = adam({ learningRate: 3e-3 });
for (let epoch = 0; epoch < epochs; epoch++) eachBatch((xb, yb) => slim.step(xb, yb, slimOptimizer));
console.log(`slimmable, one set of weights: ${slim.widths.map((w) => `width ${w} (${slim.unitsAt(w).get('fc1')} units) ${(100 * slim.accuracy(testX, testY, w)).toFixed(2)}%`).join(', ')}`);
try {
  slim.apply(testX, 0.75);
} catch (e) {
  console.log(`asking for an untrained width: ${e.code}: ${e.message}`);
}
slim.dispose();
slimModel.dispose();

// 3. A gated residual block: rows whose gate is closed skip it.
const resGraph = {
  inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }],
  nodes: [
    { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 64 } },
    { id: 'relu1', op: 'relu', inputs: ['fc1'], attrs: {} },
    { id: 'block', op: 'dense', inputs: ['relu1'], attrs: { units: 64 } },
    { id: 'blockRelu', op: 'relu', inputs: ['block'], attrs: {} },
    { id: 'res', op: 'add', inputs: ['relu1', 'blockRelu'], attrs: {} },
    { id: 'out', op: 'dense', inputs: ['res'], attrs: { units: 10 } },
  ],
  outputs: ['out'],
};
const gatedModel = Model.create(resGraph, { seed: 2 });
const gate = addSkipGate(gatedModel, { input: 'relu1', output: 'res' });
const gateOptimizer = adam({ learningRate: 2e-3 });
for (let epoch = 0; epoch < epochs; epoch++) eachBatch((xb, yb) => gatedStep(gatedModel, xb, yb, gateOptimizer, [gate], { cost: 0.05 }));
const gated = gatedPredict(gatedModel, testX, [gate]);
console.log(`gated block computed for ${gated.computedRows[0]} of ${testY.length} test digits; accuracy ${(100 * accuracy(gated.output, testY)).toFixed(2)}%`);
gated.output.dispose();
gatedModel.dispose();
tf.dispose([x, y, valX, testX]);
if (args.backend === 'wasm') tf.removeBackend('wasm');
