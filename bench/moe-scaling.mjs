// moe-scaling: time per token of one MoE layer (Switch top-1, sparse dispatch) at 1, 4, 16 and
// 64 experts with fixed tokens and fixed expert size, against a dense FFN of the same active
// size (dense d -> h -> relu -> d), all in the same run on the same backend.
//   e64_over_e1 = time per token at 64 experts / at 1 expert (flat = compute per token does not
//     grow with the number of experts; the issue's bound is <= 1.5)
//   moe_over_dense = worst MoE time per token (any expert count) / dense FFN (bound <= 2.0)
// Forward pass (inference, dropless so every token is computed by exactly one expert); the
// training step (forward + backward + Adam) is reported in details with the same ratios.
//   pnpm bench moe-scaling [--backend wasm|cpu] [--tokens 16384] [--dim 128] [--hidden 512] [--threads 1]
import { parseArgs } from 'node:util';
import { tf, Model, createOpRegistry, trainStep, adam } from '@rs/core';
import { registerMoe } from '@rs/moe';
import { selectBackend } from './lib/backends.mjs';
import { writeResult, timeIt } from './lib/results.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    tokens: { type: 'string', default: '16384' },
    dim: { type: 'string', default: '128' },
    hidden: { type: 'string', default: '512' },
    threads: { type: 'string' },
    repeats: { type: 'string', default: '9' },
  },
});
await selectBackend(args.backend, { threads: args.threads === undefined ? undefined : Number(args.threads) });
const tokens = Number(args.tokens);
const dim = Number(args.dim);
const hidden = Number(args.hidden);
const repeats = Number(args.repeats);
const registry = registerMoe(createOpRegistry());
const x = tf.randomNormal([tokens, dim], 0, 1, 'float32', 1);
const target = tf.randomNormal([tokens, dim], 0, 1, 'float32', 2);
const mse = (out, y) => tf.mean(tf.square(tf.sub(out, y)));
const input = [{ id: 'x', shape: [null, dim], dtype: 'float32' }];

function denseModel() {
  return Model.create(
    {
      inputs: input,
      nodes: [
        { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: hidden } },
        { id: 'relu', op: 'relu', inputs: ['fc1'], attrs: {} },
        { id: 'fc2', op: 'dense', inputs: ['relu'], attrs: { units: dim } },
      ],
      outputs: ['fc2'],
    },
    { registry, seed: 0 },
  );
}
function moeModel(experts) {
  return Model.create(
    { inputs: input, nodes: [{ id: 'moe', op: 'moe', inputs: ['x'], attrs: { experts, hidden, routing: 'switch', dropless: true } }], outputs: ['moe'] },
    { registry, seed: 0 },
  );
}

async function measure(model) {
  const forward = await timeIt(
    () => {
      const y = model.apply(x);
      y.dataSync();
      y.dispose();
    },
    { warmup: 2, repeats },
  );
  const optimizer = adam({ learningRate: 1e-3 });
  const train = await timeIt(() => trainStep(model, [x], target, mse, optimizer), { warmup: 2, repeats: Math.max(3, Math.floor(repeats / 2)) });
  const run = model.run(x);
  const imbalance = run.metrics.get('moe/imbalance')?.dataSync()[0];
  for (const t of [...run.outputs, ...run.losses.values(), ...run.metrics.values()]) t.dispose();
  return { forwardMs: forward.median, trainMs: train.median, usPerToken: (1000 * forward.median) / tokens, trainUsPerToken: (1000 * train.median) / tokens, imbalance, flopsPerToken: model.counts().flops };
}

const rows = {};
const dense = denseModel();
rows.dense = await measure(dense);
dense.dispose();
for (const experts of [1, 4, 16, 64]) {
  const model = moeModel(experts);
  rows[`e${experts}`] = await measure(model);
  model.dispose();
  console.log(`experts ${experts}: ${rows[`e${experts}`].usPerToken.toFixed(3)} us/token forward, ${rows[`e${experts}`].trainUsPerToken.toFixed(3)} us/token train step`);
}
console.log(`dense: ${rows.dense.usPerToken.toFixed(3)} us/token forward, ${rows.dense.trainUsPerToken.toFixed(3)} us/token train step`);
const moeKeys = ['e1', 'e4', 'e16', 'e64'];
const worst = (field) => Math.max(...moeKeys.map((k) => rows[k][field]));
writeResult(
  'moe-scaling',
  {
    e64_over_e1: rows.e64.forwardMs / rows.e1.forwardMs,
    moe_over_dense: worst('forwardMs') / rows.dense.forwardMs,
    e64_over_e1_train: rows.e64.trainMs / rows.e1.trainMs,
    moe_over_dense_train: worst('trainMs') / rows.dense.trainMs,
    us_per_token_e64: rows.e64.usPerToken,
    us_per_token_dense: rows.dense.usPerToken,
  },
  { backend: tf.getBackend(), threads: args.threads ?? 'backend default', tokens, dim, hidden, routing: 'switch (top-1), dropless', rows },
);
if (tf.getBackend() === 'wasm') tf.removeBackend('wasm');
