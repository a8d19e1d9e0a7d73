// onnx-vs-ort: inference of the same pruned LeNet-300-100 on our wasm backend (@rs/backend-wasm,
// `model.apply`) and in onnxruntime-node (CPU execution provider) on the model exported by
// @rs/onnx, in the same process. LeNet-300-100 is trained briefly on MNIST, then pruned as the
// main example does (half of the hidden units removed physically, then 90% of the weights by
// magnitude, fine-tuning after each step).
//   ratio = our median ms per batch / ORT median ms per batch at the reference batch (< 1: we are faster);
//   ratio_b<N> for every batch size. Both sides go from a host Float32Array to a host result
//   (ours: tf.tensor -> apply -> dataSync; ORT: Tensor -> run -> data).
//   pnpm bench onnx-vs-ort [--batches 1,256] [--threads N] [--ort-threads N] [--epochs 3] [--rounds 3]
// ORT runs with as many intra-op threads as the wasm backend has workers unless --ort-threads is given.
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { tf, Model, lenet300100, fit, evaluate, adam } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm, threadsCount, shutdown } from '@rs/backend-wasm';
import { loadMnist } from '@rs/datasets';
import { pruneUnits, pruneWeights } from '@rs/prune';
import { toOnnx } from '@rs/onnx';
import ort from 'onnxruntime-node';
import { writeResult, timeIt } from './lib/results.mjs';

const { values: args } = parseArgs({
  options: {
    batches: { type: 'string', default: '1,256' },
    reference: { type: 'string', default: '256' },
    threads: { type: 'string' },
    'ort-threads': { type: 'string' },
    epochs: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    seed: { type: 'string', default: '0' },
  },
});
const started = performance.now();
const loadBefore = loadavg();
await installCpu({ activate: false });
await installWasm({ threads: args.threads ? Number(args.threads) : undefined });
const wasmThreads = threadsCount();

// Train, prune, fine-tune (short versions of examples/main).
const mnist = loadMnist();
const train = { x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]), y: tf.tensor1d(mnist.train.y, 'int32') };
const test = { x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]), y: tf.tensor1d(mnist.test.y, 'int32') };
const seed = Number(args.seed);
const model = Model.create(lenet300100(), { seed });
const epochs = Number(args.epochs);
const fitFor = (n, learningRate) => fit(model, train, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate }), epochs: n, batchSize: 128, seed });
await fitFor(epochs, 2e-3);
const denseAccuracy = evaluate(model, test).accuracy;
pruneUnits(model, { fraction: 0.5, score: 'l1', groups: ['fc1', 'fc2'], reason: 'onnx-vs-ort: half of the hidden units' });
await fitFor(1, 1e-3);
pruneWeights(model, { sparsity: 0.9, sparsityPerParam: { 'fc3/kernel': 0.5 }, score: 'l1', scope: 'layer', reason: 'onnx-vs-ort: 90% of weights' });
await fitFor(1, 1e-3);
const accuracy = evaluate(model, test).accuracy;
const counts = model.counts();
console.log(`pruned LeNet-300-100 (${model.param('fc1/kernel').value.shape[1]}-${model.param('fc2/kernel').value.shape[1]} hidden, ${counts.params} parameters before masks): test accuracy ${(100 * accuracy).toFixed(2)}% (dense ${(100 * denseAccuracy).toFixed(2)}%)`);

// Export and open in ONNX Runtime.
const exportStart = performance.now();
const bytes = toOnnx(model, { name: 'lenet300100-pruned' });
const exportMs = performance.now() - exportStart;
const ortThreads = args['ort-threads'] ? Number(args['ort-threads']) : wasmThreads;
const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: ortThreads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });

const batches = args.batches.split(',').map(Number);
const inputs = new Map(batches.map((b) => [b, Float32Array.from(mnist.test.x.subarray(0, b * 784))]));
const inferOn = (m) => (b) => {
  const x = tf.tensor2d(inputs.get(b), [b, 784]);
  const y = m.apply(x);
  const data = y.dataSync();
  tf.dispose([x, y]);
  return data;
};
const ours = inferOn(model);
// The same weights without masks (the masked values are already zero): what mask application costs.
const plain = Model.create(model.graph, { params: Object.fromEntries(model.paramKeys().map((k) => [k, model.param(k).value])) });
const oursPlain = inferOn(plain);
const theirs = async (b) => {
  const result = await session.run({ x: new ort.Tensor('float32', inputs.get(b), [b, 784]) });
  return result.fc3.data;
};

// Same function: largest difference of the logits over the whole test set, and ORT's accuracy.
let maxDiff = 0;
let ortCorrect = 0;
for (let s = 0; s < mnist.test.count; s += 500) {
  const n = Math.min(500, mnist.test.count - s);
  const xs = Float32Array.from(mnist.test.x.subarray(s * 784, (s + n) * 784));
  const r = await session.run({ x: new ort.Tensor('float32', xs, [n, 784]) });
  const x = tf.tensor2d(xs, [n, 784]);
  const y = model.apply(x);
  const a = y.dataSync();
  tf.dispose([x, y]);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 0; c < 10; c++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i * 10 + c] - r.fc3.data[i * 10 + c]));
      if (r.fc3.data[i * 10 + c] > r.fc3.data[i * 10 + best]) best = c;
    }
    if (best === mnist.test.y[s + i]) ortCorrect += 1;
  }
}
const ortAccuracy = ortCorrect / mnist.test.count;

// Alternate rounds so background load hits both alike; medians of per-batch times.
const rounds = Number(args.rounds);
const repeatsFor = (b) => (b <= 16 ? 300 : 60);
const timings = {};
for (const b of batches) timings[b] = { ours: [], ort: [], oursWithoutMasks: [] };
const tensorsBefore = tf.memory().numTensors;
for (let round = 0; round < rounds; round++) {
  for (const b of batches) {
    timings[b].ours.push((await timeIt(() => ours(b), { warmup: 10, repeats: repeatsFor(b) })).median);
    timings[b].ort.push((await timeIt(() => theirs(b), { warmup: 10, repeats: repeatsFor(b) })).median);
    timings[b].oursWithoutMasks.push((await timeIt(() => oursPlain(b), { warmup: 10, repeats: repeatsFor(b) })).median);
  }
}
if (tf.memory().numTensors !== tensorsBefore) throw new Error(`our inference leaked ${tf.memory().numTensors - tensorsBefore} tensors`);
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const perBatch = {};
for (const b of batches) {
  perBatch[b] = { oursMs: median(timings[b].ours), ortMs: median(timings[b].ort), oursWithoutMasksMs: median(timings[b].oursWithoutMasks) };
  perBatch[b].ratio = perBatch[b].oursMs / perBatch[b].ortMs;
  perBatch[b].ratioWithoutMasks = perBatch[b].oursWithoutMasksMs / perBatch[b].ortMs;
  console.log(`batch ${b}: ours ${perBatch[b].oursMs.toFixed(3)} ms (${perBatch[b].oursWithoutMasksMs.toFixed(3)} ms without masks), ORT ${perBatch[b].ortMs.toFixed(3)} ms, ours/ORT ${perBatch[b].ratio.toFixed(2)}`);
}
const loadAfter = loadavg();
const reference = Number(args.reference);
const summary = { ratio: perBatch[reference]?.ratio ?? perBatch[batches[batches.length - 1]].ratio };
for (const b of batches) summary[`ratio_b${b}`] = perBatch[b].ratio;
for (const b of batches) {
  summary[`ours_ms_b${b}`] = perBatch[b].oursMs;
  summary[`ort_ms_b${b}`] = perBatch[b].ortMs;
}
Object.assign(summary, { max_abs_diff: maxDiff, accuracy: 100 * accuracy, ort_accuracy: 100 * ortAccuracy, backend: tf.getBackend(), wasm_threads: wasmThreads, ort_threads: ortThreads, load_avg_1m: loadAfter[0] });

writeResult('onnx-vs-ort', summary, {
  what: 'Median ms per batch (host Float32Array in, host logits out) of the same pruned LeNet-300-100: ours = model.apply on @rs/backend-wasm (masks are multiplied in on every call, as in every forward); ORT = onnxruntime-node CPU EP on toOnnx(model) (masks folded into the initializers). ratio = ours / ORT at the reference batch. oursWithoutMasks: the same weights in a model without masks (masked values are zero already), to show what mask application costs; not the headline.',
  referenceBatch: reference,
  perBatch,
  timingsMs: { ...timings, note: `median of ${rounds} alternating rounds; each round is the median of 300 (batch <= 16) or 60 calls after 10 warmups` },
  model: { hidden: [model.param('fc1/kernel').value.shape[1], model.param('fc2/kernel').value.shape[1]], params: counts.params, flopsPerDigit: counts.flops, onnxBytes: bytes.length, exportMs },
  training: { trainDigits: mnist.train.count, testDigits: mnist.test.count, epochs, fineTuneEpochs: [1, 1], denseAccuracy: 100 * denseAccuracy },
  versions: { onnxruntimeNode: ort.env.versions?.node ?? 'unknown', opset: 17 },
  loadAverage: { before: loadBefore, after: loadAfter, note: 'os.loadavg() (1, 5, 15 min); other work shared this 2-core machine, so absolute times are noisy' },
  seconds: (performance.now() - started) / 1000,
});
await session.release();
tf.dispose([train.x, train.y, test.x, test.y]);
model.dispose();
plain.dispose();
shutdown();
