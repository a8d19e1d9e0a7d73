// Pruning LeNet-300-100 on MNIST (8,000 train / 2,000 test digits), three ways:
//  1. magnitude pruning with retraining (Han et al. 2015), iterative to 90%+ of weights removed;
//  2. lottery ticket: iterative magnitude pruning with rewinding to init (Frankle & Carbin 2019),
//     20% of hidden-layer and 10% of output-layer weights per round, with the random-reinit control;
//  3. SNIP at initialisation to 95% sparsity (Lee et al. 2019), then training.
// Writes bench/results/prune-mnist.json and prints the tables.
//   node examples/prune/index.mjs [--backend cpu|wasm] [--only magnitude|lottery|snip]
import { parseArgs } from 'node:util';
import { writeFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { Model, lenet300100, tf } from '@rs/core';
import { pruneWeights, iterativeSchedule, findLotteryTicket, pruneReport, formatReport, prunableParams } from '@rs/prune';
import { setup, train, accuracy, pct } from './mnist.mjs';

const { values: args } = parseArgs({ options: { backend: { type: 'string', default: 'wasm' }, only: { type: 'string' }, epochs: { type: 'string', default: '20' } } });
const epochs = Number(args.epochs);
const data = await setup(args.backend);
const results = { backend: args.backend, epochs };
const weightSparsity = (model) => {
  const keys = prunableParams(model);
  let total = 0;
  let zeros = 0;
  for (const k of keys) {
    const p = model.param(k);
    total += p.value.size;
    if (p.mask) zeros += p.value.size - tf.tidy(() => tf.sum(p.mask).dataSync()[0]);
  }
  return zeros / total;
};

// Dense baseline (seed 0), the reference for every comparison.
const dense = Model.create(lenet300100(), { seed: 0 });
await train(dense, data.train, { epochs });
results.dense = accuracy(dense, data.test);
console.log(`dense LeNet-300-100: ${pct(results.dense)} test accuracy, ${dense.counts().params} weights`);

if (!args.only || args.only === 'magnitude') {
  // Iterative magnitude pruning with retraining: 3 rounds to 91.4% of the hidden layers' weights
  // and 70% of the small output layer's (as Han et al. prune the last layer less), layer-wise,
  // each followed by retraining at a lower learning rate (pruned weights stay at zero).
  const model = Model.create(lenet300100(), { seed: 0 });
  await train(model, data.train, { epochs });
  const rows = [];
  const hidden = iterativeSchedule(0.914, 3);
  const output = iterativeSchedule(0.7, 3);
  for (let round = 0; round < 3; round++) {
    const target = hidden[round];
    pruneWeights(model, { sparsity: target, sparsityPerParam: { 'fc3/kernel': output[round] }, score: 'l1', scope: 'layer', reason: `magnitude pruning to ${pct(target)} (output layer ${pct(output[round])})` });
    const pruned = accuracy(model, data.test);
    model.resetOptimizerState();
    await train(model, data.train, { epochs: round === 2 ? epochs : Math.ceil(epochs / 2), learningRate: 1e-3 });
    rows.push({ sparsity: weightSparsity(model), afterPrune: pruned, afterRetrain: accuracy(model, data.test) });
    console.log(`magnitude: ${pct(rows.at(-1).sparsity)} of weights removed: ${pct(pruned)} right after pruning, ${pct(rows.at(-1).afterRetrain)} after retraining`);
  }
  const report = pruneReport(model, { input: data.test.x });
  console.log(formatReport(report));
  results.magnitude = { rows, final: rows.at(-1), nonzero: report.nonzeroParams, drop: results.dense - rows.at(-1).afterRetrain };
}

if (!args.only || args.only === 'lottery') {
  // 10 rounds: hidden layers keep 0.8^10 = 10.7% of weights; the output layer 0.9^10 = 34.9%.
  const table = [];
  const { rows } = await findLotteryTicket({
    create: (seed) => Model.create(lenet300100(), { seed }),
    train: (model) => train(model, data.train, { epochs: Math.ceil(epochs / 2) }),
    evaluate: (model) => accuracy(model, data.test),
    rounds: 10,
    rate: 0.2,
    ratePerParam: { 'fc3/kernel': 0.1 },
    control: true,
    onRound: (row) => {
      table.push(row);
      console.log(`lottery round ${row.round}: ${pct(row.remaining)} of weights remain, ticket ${pct(row.accuracy)}${row.controlAccuracy !== undefined ? `, random re-init ${pct(row.controlAccuracy)}` : ''}`);
    },
  });
  results.lottery = { rows, final: rows.at(-1) };
}

if (!args.only || args.only === 'snip') {
  const model = Model.create(lenet300100(), { seed: 0 });
  const index = tf.tensor1d([...Array(100).keys()], 'int32');
  const batch = { x: tf.gather(data.train.x, index), y: tf.gather(data.train.y, index) };
  pruneWeights(model, { sparsity: 0.95, score: 'snip', scope: 'global', context: { batches: [batch] }, reason: 'SNIP at initialisation' });
  await train(model, data.train, { epochs });
  results.snip = { sparsity: weightSparsity(model), accuracy: accuracy(model, data.test) };
  results.snip.drop = results.dense - results.snip.accuracy;
  console.log(`SNIP at init, ${pct(results.snip.sparsity)} sparse: ${pct(results.snip.accuracy)} (dense ${pct(results.dense)})`);
}

// Runs of single parts (--only) update their part of the results file.
const file = new URL('../../bench/results/prune-mnist.json', import.meta.url);
mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
const previous = args.only && existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
writeFileSync(file, JSON.stringify({ ...previous, name: 'prune-mnist', date: new Date().toISOString(), ...results }, null, 2) + '\n');
