// The main job: train LeNet-300-100 (784-300-100-10, ReLU) on 8,000 real MNIST digits and
// report test accuracy on the 2,000 held-out digits, the parameter count and the FLOPs.
// Then it reorganizes the trained network: structured + magnitude pruning with fine-tuning, and
// an early exit after the first hidden layer with per-digit exit in batched inference.
//
//   npm run main                  # from the repository root
//   node examples/main/index.mjs --backend cpu   (or native; default: wasm on all cores; 20 epochs, batch 128, Adam 2e-3)
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Model, lenet300100, fit, evaluate, adam, tf, useBackend, save } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm } from '@rs/backend-wasm';
import { install as installNative } from '@rs/backend-native';
import { loadMnist } from '@rs/datasets';
import { pruneWeights, pruneUnits, pruneReport } from '@rs/prune';
import { addExit, multiExitStep, calibrateThreshold, earlyExitPredict, setExitPolicy } from '@rs/dynamic';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '20' },
    'batch-size': { type: 'string', default: '128' },
    'learning-rate': { type: 'string', default: '0.002' },
    'weight-decay': { type: 'string', default: '0' },
    seed: { type: 'string', default: '0' },
    backend: { type: 'string', default: 'wasm' },
    'prune-epochs': { type: 'string', default: '8' },
    'exit-epochs': { type: 'string', default: '2' },
    threads: { type: 'string' },
    out: { type: 'string', default: 'out/lenet-pruned-exit.rsm' },
  },
});

const started = Date.now();
await installCpu({ activate: false });
if (args.backend === 'wasm') await installWasm({ activate: false, threads: args.threads ? Number(args.threads) : undefined });
if (args.backend === 'native') await installNative({ activate: false, threads: args.threads ? Number(args.threads) : undefined });
await useBackend(args.backend);

const mnist = loadMnist();
console.log(`MNIST (${mnist.source}): ${mnist.train.count} train / ${mnist.test.count} test digits, backend ${tf.getBackend()}`);
const train = {
  x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]),
  y: tf.tensor1d(mnist.train.y, 'int32'),
};
const test = {
  x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]),
  y: tf.tensor1d(mnist.test.y, 'int32'),
};

const model = Model.create(lenet300100(), { seed: Number(args.seed) });
const counts = model.counts();
console.log(`LeNet-300-100: ${counts.params.toLocaleString('en-US')} parameters, ${counts.flops.toLocaleString('en-US')} FLOPs per digit`);

await fit(model, train, {
  loss: 'softmaxCrossEntropy',
  optimizer: adam({ learningRate: Number(args['learning-rate']), weightDecay: Number(args['weight-decay']) }),
  epochs: Number(args.epochs),
  batchSize: Number(args['batch-size']),
  seed: Number(args.seed),
  verbose: true,
});

const result = evaluate(model, test);
console.log(`test accuracy: ${(100 * result.accuracy).toFixed(2)}% on ${mnist.test.count} held-out digits (loss ${result.loss.toFixed(4)})`);
console.log(`parameters: ${counts.params.toLocaleString('en-US')}  FLOPs: ${counts.flops.toLocaleString('en-US')}  time: ${((Date.now() - started) / 1000).toFixed(1)} s`);

// Reorganization step 1, pruning (@rs/prune): remove half of the hidden units physically
// (the model gets smaller and faster), then mask 90% of the remaining weights by magnitude,
// fine-tuning after each step. Every step is journaled.
const pruneEpochs = Number(args['prune-epochs']);
const fineTune = (learningRate) => fit(model, train, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate }), epochs: pruneEpochs, batchSize: Number(args['batch-size']), seed: Number(args.seed) });
pruneUnits(model, { fraction: 0.5, score: 'l1', groups: ['fc1', 'fc2'], reason: 'main job: half of the hidden units' });
model.resetOptimizerState();
await fineTune(1e-3);
pruneWeights(model, { sparsity: 0.9, sparsityPerParam: { 'fc3/kernel': 0.5 }, score: 'l1', scope: 'layer', reason: 'main job: 90% of weights by magnitude' });
model.resetOptimizerState();
await fineTune(1e-3);
const pruned = evaluate(model, test);
const report = pruneReport(model);
console.log(`after pruning: ${model.group('fc1').size}-${model.group('fc2').size} hidden units, ${report.nonzeroParams.toLocaleString('en-US')} non-zero of ${report.params.toLocaleString('en-US')} parameters (${(100 * report.nonzeroParams / counts.params).toFixed(1)}% of the dense model), ${report.flops.toLocaleString('en-US')} FLOPs`);
console.log(`pruned test accuracy: ${(100 * pruned.accuracy).toFixed(2)}% (dense ${(100 * result.accuracy).toFixed(2)}%)`);
// Reorganization step 2, early exit (@rs/dynamic): attach an exit head after the first hidden
// layer (a journaled edit), train only the head with the trunk frozen, calibrate an entropy
// threshold on 1,000 training digits (at most 0.5 pt below the full network there), and run
// batched inference where confident digits leave after fc1 and only the rest run fc2-fc3.
model.edit((tx) => { for (const node of ['fc1', 'fc2', 'fc3']) tx.setTrainable(node, false); }, { technique: 'dynamic', reason: 'main job: freeze the trunk' });
addExit(model, { at: 'relu1', classes: 10, reason: 'main job: early exit after fc1' });
const exitOptimizer = adam({ learningRate: 3e-3 });
for (let epoch = 0; epoch < Number(args['exit-epochs']); epoch++) {
  for (let start = 0; start + 128 <= mnist.train.count; start += 128) {
    const xb = tf.slice(train.x, start, 128);
    const yb = tf.slice(train.y, start, 128);
    multiExitStep(model, xb, yb, exitOptimizer, [1, 0]);
    tf.dispose([xb, yb]);
  }
}
const calX = tf.slice(train.x, 7000, 1000);
const calibration = calibrateThreshold(model, calX, mnist.train.y.slice(7000, 8000), { rule: 'entropy', maxDrop: 0.005 });
calX.dispose();
// The calibrated policy is stored in the model (journaled), so a saved copy exits the same way.
setExitPolicy(model, { rule: 'entropy', thresholds: calibration.threshold }, 'main job: calibrated entropy threshold');
const exitRun = earlyExitPredict(model, test.x);
const exitPred = tf.argMax(exitRun.logits, -1);
const exitAccuracy = [...exitPred.dataSync()].filter((p, i) => p === mnist.test.y[i]).length / mnist.test.count;
const exitRate = [...exitRun.exitIndex].filter((e) => e === 0).length / mnist.test.count;
tf.dispose([exitPred, exitRun.logits]);
console.log(`early exit after fc1 (entropy <= ${calibration.threshold.toPrecision(3)}): ${(100 * exitRate).toFixed(1)}% of test digits leave early, accuracy ${(100 * exitAccuracy).toFixed(2)}% (full network ${(100 * pruned.accuracy).toFixed(2)}%)`);
for (const entry of model.journal) console.log(`journal #${entry.seq} [${entry.technique}] ${entry.reason}: params ${entry.params.before} -> ${entry.params.after}, non-zero ${entry.nonzeroParams.before} -> ${entry.nonzeroParams.after}, FLOPs ${entry.flops.before} -> ${entry.flops.after}`);
// Saved for deployment: the browser example (examples/browser) and the rs CLI load this file.
mkdirSync(dirname(args.out), { recursive: true });
await save(model, args.out);
console.log(`saved the reorganized model to ${args.out} (rs inspect ${args.out})`);
console.log(`total time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
model.dispose();
tf.dispose([train.x, train.y, test.x, test.y]);
