// prune-structured: remove 75% of LeNet-300-100's hidden units (300-100 -> 75-25) by L1 group
// importance (summed over every coupled weight through core's unit groups), fine-tune, and
// measure inference latency at batch 256 against the dense model in the same run.
//   speedup = dense ms / pruned ms (median over alternating rounds, each the median of `timeIt`);
//   flop_ratio = dense FLOPs / pruned FLOPs; efficiency = speedup / flop_ratio.
//   pnpm bench prune-structured [--backend cpu|wasm] [--epochs 20] [--finetune-epochs 10] [--seed 0]
// The seed sets the initial weights and the order of the training batches (seed 0: the runs
// before the option existed); `pnpm bench seeds prune-structured` runs several.
// Default backend: wasm when @rs/backend-wasm can be imported, else cpu.
import { parseArgs } from 'node:util';
import { tf, Model, lenet300100, fit, evaluate, adam, saveToBuffer, loadFromBuffer } from '@rs/core';
import { pruneUnits, pruneReport } from '@rs/prune';
import { loadMnist } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult, timeIt } from './lib/results.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string' },
    epochs: { type: 'string', default: '20' },
    'finetune-epochs': { type: 'string' },
    rounds: { type: 'string' },
    seed: { type: 'string', default: '0' },
  },
});
let backend = args.backend;
if (backend === undefined) {
  try {
    await import('@rs/backend-wasm');
    backend = 'wasm';
  } catch {
    backend = 'cpu';
  }
}
if (backend !== 'wasm' && backend !== 'cpu') throw new Error(`--backend must be cpu or wasm, got ${backend}`);
await selectBackend(backend);
const epochs = Number(args.epochs);
const fineTuneEpochs = Number(args['finetune-epochs'] ?? Math.ceil(epochs / 2));
const mnist = loadMnist();
const train = { x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]), y: tf.tensor1d(mnist.train.y, 'int32') };
const test = { x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]), y: tf.tensor1d(mnist.test.y, 'int32') };
const seed = Number(args.seed);
const options = (e, learningRate) => ({ loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate }), epochs: e, batchSize: 128, seed });

const dense = Model.create(lenet300100(), { seed });
await fit(dense, train, options(epochs, 2e-3));
const denseAccuracy = evaluate(dense, test).accuracy;

// The pruned model starts as a copy of the trained dense one.
const pruned = loadFromBuffer(saveToBuffer(dense));
pruneUnits(pruned, { fraction: 0.75, score: 'l1', groups: ['fc1', 'fc2'], reason: 'remove 75% of hidden units' });
const beforeFineTune = evaluate(pruned, test).accuracy;
pruned.resetOptimizerState();
await fit(pruned, train, options(fineTuneEpochs, 1e-3));
const prunedAccuracy = evaluate(pruned, test).accuracy;

// Latency: a batch of 256 test digits, forward pass with the result read back. Rounds alternate
// between the two models (so drift of the machine hits both); each round is the median of
// `timeIt`; the speedup is the median of the per-round ratios.
const batch = tf.slice(test.x, 0, 256);
const forward = (model) => () => {
  const out = model.predict(batch);
  out.dataSync();
  out.dispose();
};
const rounds = Number(args.rounds ?? (backend === 'cpu' ? 8 : 30));
const repeats = backend === 'cpu' ? 3 : 10;
const denseTimes = [];
const prunedTimes = [];
const ratios = [];
for (let round = 0; round < rounds; round++) {
  const d = (await timeIt(forward(dense), { warmup: round === 0 ? 5 : 1, repeats })).median;
  const p = (await timeIt(forward(pruned), { warmup: round === 0 ? 5 : 1, repeats })).median;
  denseTimes.push(d);
  prunedTimes.push(p);
  ratios.push(d / p);
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const speedup = median(ratios);
const flopRatio = dense.counts().flops / pruned.counts().flops;
const report = pruneReport(pruned);
// The acceptance run (wasm) is prune-structured.json; other backends get their own file.
writeResult(
  backend === 'wasm' ? 'prune-structured' : `prune-structured-${backend}`,
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
    epochs,
    fineTuneEpochs,
    timing: { rounds, repeatsPerRound: repeats, ratios },
    dense: { params: dense.counts().params, flops: dense.counts().flops, widths: [300, 100] },
    pruned: { params: pruned.counts().params, flops: pruned.counts().flops, widths: [pruned.group('fc1').size, pruned.group('fc2').size], layers: report.layers },
    journal: pruned.journal,
  },
);
if (backend === 'wasm') (await import('@rs/backend-wasm')).shutdown?.();
