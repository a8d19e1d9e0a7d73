// moe-moby-dick: Switch's headline claim at small scale (Fedus et al. 2021, figure 1 / table 1:
// at equal FLOPs per token, more experts reach a lower loss after the same number of steps).
// A character transformer on Moby Dick (@rs/datasets) whose FFNs are replaced by Switch MoE
// layers (8 experts, top-1, capacity factor 1.25, balance loss 0.01, z-loss 0.001) against the
// dense model with the same FFN width (same active FLOPs per token, up to the router), same
// steps, batches and seeds. The same MoE without the balance loss is trained in the same run to
// show the load imbalance it leads to. Writes bench/results/moe-moby-dick.json (table + curves).
//   pnpm bench moe-moby-dick [--steps 250] [--seeds 3] [--backend wasm] [--variants dense,switch] [--result moe-moby-dick-long]
import { parseArgs } from 'node:util';
import { tf, Model, createOpRegistry, charTransformer, trainStep, adam, softmaxCrossEntropy } from '@rs/core';
import { registerMoe, moeGraph, moeMetrics } from '@rs/moe';
import { loadMobyDick, charBatches } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    steps: { type: 'string', default: '250' },
    seeds: { type: 'string', default: '3' },
    context: { type: 'string', default: '32' },
    dim: { type: 'string', default: '32' },
    ffn: { type: 'string', default: '64' },
    experts: { type: 'string', default: '8' },
    'batch-size': { type: 'string', default: '16' },
    'eval-every': { type: 'string', default: '50' },
    'learning-rate': { type: 'string', default: '0.003' },
    variants: { type: 'string', default: 'dense,switch,switch_no_balance' },
    result: { type: 'string', default: 'moe-moby-dick' },
    'first-seed': { type: 'string', default: '0' },
    'val-windows': { type: 'string', default: '64' },
    threads: { type: 'string' },
  },
});
await selectBackend(args.backend, { threads: args.threads === undefined ? undefined : Number(args.threads) });
const steps = Number(args.steps);
const context = Number(args.context);
const batchSize = Number(args['batch-size']);
const evalEvery = Number(args['eval-every']);
const experts = Number(args.experts);
const book = loadMobyDick();
const registry = registerMoe(createOpRegistry());
const base = charTransformer({ vocabSize: book.vocab.length, context, dim: Number(args.dim), heads: 2, layers: 2, ffn: Number(args.ffn) });
const allVariants = {
  dense: base,
  switch: moeGraph(base, { experts, routing: 'switch', capacityFactor: 1.25, evalCapacityFactor: 2 }),
  switch_no_balance: moeGraph(base, { experts, routing: 'switch', capacityFactor: 1.25, evalCapacityFactor: 2, balanceCoef: 0 }),
};
const variants = Object.fromEntries(args.variants.split(',').map((v) => [v, allVariants[v]]));
// Validation: `--val-windows` windows of the held-out text, drawn with a fixed seed (the same
// windows for every variant and seed), evaluated in chunks of 64; the first 64 are the windows
// earlier runs used. More windows make the estimate less noisy (64 windows = 2,048 characters).
const valWindows = Number(args['val-windows']);
if (!(valWindows > 0 && valWindows % 64 === 0)) throw new Error(`--val-windows must be a positive multiple of 64, got ${args['val-windows']}`);
const heldSampler = charBatches(book.validation, { context, batchSize: 64, seed: 1 });
const held = Array.from({ length: valWindows / 64 }, (_, i) => {
  const b = heldSampler.sample(i);
  return { x: tf.tensor2d(b.x, [64, context], 'int32'), y: tf.tensor2d(b.y, [64, context], 'int32') };
});
const moeIds = (model) => model.graph.nodes.filter((n) => n.op === 'moe').map((n) => n.id);

// Mean loss over the validation chunks; routing metrics from the first chunk.
function validation(model) {
  let loss = 0;
  let metrics;
  for (const { x, y } of held) {
    const run = model.run(x);
    loss += tf.tidy(() => softmaxCrossEntropy(run.outputs[0], y).dataSync()[0]) / held.length;
    metrics ??= Object.fromEntries([...run.metrics].map(([k, v]) => [k, v.dataSync()[0]]));
    for (const t of [...run.outputs, ...run.losses.values(), ...run.metrics.values()]) t.dispose();
  }
  return { loss, metrics };
}

const runs = [];
for (let seed = Number(args['first-seed']); seed < Number(args['first-seed']) + Number(args.seeds); seed++) {
  for (const [name, graph] of Object.entries(variants)) {
    const model = Model.create(graph, { registry, seed });
    const optimizer = adam({ learningRate: Number(args['learning-rate']) });
    const batches = charBatches(book.train, { context, batchSize, seed });
    const curve = [];
    const started = performance.now();
    let last;
    for (let step = 1; step <= steps; step++) {
      const batch = batches.sample(step);
      const x = tf.tensor2d(batch.x, [batchSize, context], 'int32');
      const y = tf.tensor2d(batch.y, [batchSize, context], 'int32');
      last = trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
      tf.dispose([x, y]);
      if (step % evalEvery === 0 || step === steps) curve.push({ step, train: last.loss, validation: validation(model).loss });
    }
    const seconds = (performance.now() - started) / 1000;
    const final = validation(model);
    const routing = Object.fromEntries(
      moeIds(model).map((id) => {
        const m = moeMetrics(final.metrics, id);
        const trainStepMetrics = moeMetrics(last.metrics, id);
        return [id, { loads: m.loads.map((v) => Number(v.toFixed(4))), imbalance: m.imbalance, droppedEval: m.dropped, droppedTrain: trainStepMetrics.dropped, entropy: trainStepMetrics.entropy, balance: trainStepMetrics.balance }];
      }),
    );
    const row = { variant: name, seed, validationLoss: final.loss, seconds, params: model.counts().params, flopsPerToken: model.counts().flops / context, curve, routing, auxLosses: last.losses };
    runs.push(row);
    const imbalance = Object.values(routing).map((r) => r.imbalance.toFixed(2)).join('/');
    console.log(`seed ${seed} ${name}: validation loss ${final.loss.toFixed(4)} in ${seconds.toFixed(0)} s${imbalance ? `, busiest expert / mean load ${imbalance}` : ''}`);
    model.dispose();
  }
}
const mean = (xs) => xs.reduce((s, v) => s + v, 0) / xs.length;
const of = (name) => runs.filter((r) => r.variant === name);
const wins = of('switch').filter((r, i) => r.validationLoss < of('dense')[i].validationLoss).length;
const maxImbalance = (name) => Math.max(...of(name).flatMap((r) => Object.values(r.routing).map((x) => x.imbalance)));
const summary = {
  dense_val_loss: mean(of('dense').map((r) => r.validationLoss)),
  switch_val_loss: mean(of('switch').map((r) => r.validationLoss)),
  switch_wins: `${wins}/${of('switch').length}`,
  max_imbalance_balanced: maxImbalance('switch'),
};
if (of('switch_no_balance').length > 0) {
  summary.max_imbalance_no_balance = maxImbalance('switch_no_balance');
  summary.no_balance_val_loss = mean(of('switch_no_balance').map((r) => r.validationLoss));
}
writeResult(
  args.result,
  summary,
  {
    backend: tf.getBackend(),
    setup: { steps, context, batchSize, dim: Number(args.dim), ffn: Number(args.ffn), experts, layers: 2, heads: 2, learningRate: Number(args['learning-rate']), validation: `${valWindows} windows of the held-out last 10% of the book` },
    runs,
  },
);
if (tf.getBackend() === 'wasm') tf.removeBackend('wasm');
