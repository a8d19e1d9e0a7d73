// wasm-slow-spots: each of @rs/backend-wasm's fixes for tfjs-backend-wasm's slow spots, measured
// at the shapes of the character transformer (2 layers, width 128, 4 heads, context 64, batch 16)
// and of LeNet-300-100 (batch 256), against the stock kernel in the same process: every round
// times every case with the package's SIMD kernels and then without them (`withoutSimdKernels`),
// interleaved, so background load hits both alike. Medians over rounds; ratio = stock / ours.
// The pruned-model case compares a pruned LeNet with the same weights copied into fresh tensors
// (what an edit should cost nothing over).
// Settings (declared before the reported run): 2 threads, 7 rounds, per case 3 warm-up calls and
// 15 timed calls per round and side, seed 0.
//   pnpm bench wasm-slow-spots
import { tf, Model, lenet300100, charTransformer, trainStep, adam, softmaxCrossEntropy } from '@rs/core';
import { install, withoutSimdKernels, simdKernelCalls } from '@rs/backend-wasm';
import { pruneUnits } from '@rs/prune';
import { loadavg } from 'node:os';
import { writeResult } from './lib/results.mjs';

const SETTINGS = { threads: 2, rounds: 7, warmup: 3, repeats: 15, seed: 0 };
await install({ threads: SETTINGS.threads });
const seed = SETTINGS.seed;
const rand = (shape, s) => tf.randomNormal(shape, 0, 1, 'float32', seed + s);

/** A case: `make` builds its inputs once and returns the call to time (its result is read back). */
const matmul = (aShape, bShape, ta, tb) => () => {
  const [a, b] = [rand(aShape, 1), rand(bShape, 2)];
  return () => tf.matMul(a, b, ta, tb);
};
const CASES = {
  // Attention (per layer: scores Q K^T, values P V; backward: their transposed forms).
  'transformer: attention scores Q K^T [16,4,64,32] x [16,4,64,32]^T': matmul([16, 4, 64, 32], [16, 4, 64, 32], false, true),
  'transformer: attention values P V [16,4,64,64] x [16,4,64,32]': matmul([16, 4, 64, 64], [16, 4, 64, 32], false, false),
  'transformer: d values P^T dY [16,4,64,64]^T x [16,4,64,32]': matmul([16, 4, 64, 64], [16, 4, 64, 32], true, false),
  // Dense backward: weight gradients X^T dY and input gradients dY W^T.
  'transformer: FFN weight gradient [1024,128]^T x [1024,512]': matmul([1024, 128], [1024, 512], true, false),
  'transformer: FFN input gradient [1024,512] x [128,512]^T': matmul([1024, 512], [128, 512], false, true),
  'lenet: fc1 weight gradient [256,784]^T x [256,300]': matmul([256, 784], [256, 300], true, false),
  'lenet: fc2 input gradient [256,100] x [300,100]^T': matmul([256, 100], [300, 100], false, true),
  // Bias gradients: sums over the leading axes.
  'transformer: bias gradient sum [16,64,512] over [0,1]': () => {
    const x = rand([16, 64, 512], 3);
    return () => tf.sum(x, [0, 1]);
  },
  'lenet: bias gradient sum [256,300] over 0': () => {
    const x = rand([256, 300], 4);
    return () => tf.sum(x, 0);
  },
  'transformer: tanh [16,64,512] (GELU)': () => {
    const x = rand([16, 64, 512], 5);
    return () => tf.tanh(x);
  },
  // Whole training steps (core's fused GELU, Adam and loss fall back to JavaScript loops without the module).
  'transformer: training step (Adam, batch 16)': () => {
    const x = tf.randomUniformInt([16, 64], 0, 83, seed);
    const y = tf.randomUniformInt([16, 64], 0, 83, seed + 1);
    const model = Model.create(charTransformer({ vocabSize: 83, context: 64, dim: 128, heads: 4, layers: 2 }), { seed });
    const optimizer = adam({ learningRate: 3e-3 });
    return () => trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss;
  },
  'lenet: training step (Adam, batch 256)': () => {
    const x = tf.randomUniform([256, 784], 0, 1, 'float32', seed);
    const y = tf.randomUniformInt([256], 0, 10, seed + 1);
    const model = Model.create(lenet300100(), { seed });
    const optimizer = adam({ learningRate: 1e-3 });
    return () => trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss;
  },
};

const read = (out) => {
  if (typeof out === 'number') return;
  out.dataSync();
  out.dispose();
};
const calls = Object.fromEntries(Object.entries(CASES).map(([name, make]) => [name, make()]));
const samples = Object.fromEntries(Object.keys(CASES).map((name) => [name, { ours: [], stock: [] }]));
const time = (call) => {
  for (let i = 0; i < SETTINGS.warmup; i++) read(call());
  const ms = [];
  for (let i = 0; i < SETTINGS.repeats; i++) {
    const t = performance.now();
    read(call());
    ms.push(performance.now() - t);
  }
  return ms;
};
const loadBefore = loadavg();
const simdBefore = simdKernelCalls();
for (let round = 0; round < SETTINGS.rounds; round++) {
  for (const [name, call] of Object.entries(calls)) {
    samples[name].ours.push(...time(call));
    samples[name].stock.push(...withoutSimdKernels(() => time(call)));
  }
  console.log(`round ${round + 1}/${SETTINGS.rounds} done`);
}

// The pruned LeNet against the same weights in fresh tensors (inference, batch 256).
const dense = Model.create(lenet300100(), { seed });
const pruned = Model.create(lenet300100(), { seed });
pruneUnits(pruned, { fraction: 0.5, score: 'l1', groups: ['fc1', 'fc2'], reason: 'wasm-slow-spots' });
const fresh = Model.create(pruned.graph, { params: Object.fromEntries(pruned.paramKeys().map((k) => [k, tf.mul(pruned.param(k).value, 1)])) });
const input = rand([256, 784], 6);
const infer = { dense: [], pruned: [], fresh: [] };
for (let round = 0; round < SETTINGS.rounds; round++) {
  for (const [name, model] of Object.entries({ dense, pruned, fresh })) infer[name].push(...time(() => model.apply(input)));
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const table = Object.fromEntries(
  Object.entries(samples).map(([name, s]) => {
    const [ours, stock] = [median(s.ours), median(s.stock)];
    return [name, { ours_ms: Number(ours.toFixed(3)), stock_ms: Number(stock.toFixed(3)), stock_over_ours: Number((stock / ours).toFixed(2)) }];
  }),
);
const simdAfter = simdKernelCalls();
const inferMs = Object.fromEntries(Object.entries(infer).map(([k, v]) => [k, Number(median(v).toFixed(3))]));
const pick = (prefix) => table[Object.keys(table).find((k) => k.startsWith(prefix))].stock_over_ours;
writeResult(
  'wasm-slow-spots',
  {
    attention_scores_speedup: pick('transformer: attention scores'),
    ffn_weight_gradient_speedup: pick('transformer: FFN weight gradient'),
    bias_gradient_speedup: pick('transformer: bias gradient'),
    tanh_speedup: pick('transformer: tanh'),
    transformer_step_speedup: pick('transformer: training step'),
    lenet_step_speedup: pick('lenet: training step'),
    pruned_over_fresh_ms: Number((inferMs.pruned / inferMs.fresh).toFixed(3)),
    load_avg_1m: Number(loadBefore[0].toFixed(2)),
  },
  {
    settings: SETTINGS,
    cases: table,
    prunedInference: { ...inferMs, flopRatio: 2.12, speedup: Number((inferMs.dense / inferMs.pruned).toFixed(3)), note: 'LeNet-300-100 at batch 256; pruned = pruneUnits 0.5 of fc1, fc2; fresh = the same weights copied into new tensors' },
    simdCalls: Object.fromEntries(Object.keys(simdAfter).map((k) => [k, simdAfter[k] - simdBefore[k]])),
    loadavgBefore: loadBefore,
    note: 'stock_over_ours = median time without the SIMD kernels / with them (same process, interleaved per round). Without the module, the training steps still use core\'s fused kernels through their JavaScript fallbacks, so their ratio understates the gain over stock tfjs-backend-wasm.',
  },
);
