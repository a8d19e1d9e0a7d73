// Pruning LeNet-300-100 on MNIST (8,000 train / 2,000 test digits), three ways, against the dense
// network trained in the same run:
//  1. magnitude pruning with retraining (Han et al. 2015): 3 iterative rounds to 91.4% of the
//     hidden layers' weights (70% of the small output layer's), then `materialize` removes the
//     units left without input weights;
//  2. lottery ticket: iterative magnitude pruning with rewinding to init (Frankle & Carbin 2019),
//     20% of hidden-layer and 10% of output-layer weights per round, with the random-reinit control;
//  3. SNIP at initialisation to 95% sparsity (Lee et al. 2019), then training.
// Prints the report of each pruned model and the tables; writes bench/results/prune-mnist-<backend>.json.
//   node examples/prune/index.mjs [--backend cpu|wasm] [--only magnitude|lottery|snip] [--epochs 20]
//                                 [--lottery-epochs 10] [--rounds 10] [--seed 0]
// The seed sets every network's initial weights and the order of the training batches (seed 0:
// the runs before the option existed). `pnpm bench seeds prune-mnist` runs it on several seeds.
// Default backend: wasm when @rs/backend-wasm can be imported, else cpu. The cpu backend is the
// slow reference (about 25 s per epoch here): `--backend cpu --epochs 2` takes about 10 minutes.
import { parseArgs } from 'node:util';
import { writeFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { Model, lenet300100, tf, saveToBuffer, loadFromBuffer } from '@rs/core';
import { pruneWeights, pruneIteratively, materialize, findLotteryTicket, pruneReport, formatReport, prunableParams } from '@rs/prune';
import { selectBackend, releaseBackend, loadData, train, accuracy, pct } from './mnist.mjs';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string' },
    only: { type: 'string' },
    epochs: { type: 'string', default: '20' },
    'lottery-epochs': { type: 'string' },
    rounds: { type: 'string', default: '10' },
    seed: { type: 'string', default: '0' },
  },
});
const epochs = Number(args.epochs);
const lotteryEpochs = Number(args['lottery-epochs'] ?? Math.ceil(epochs / 2));
const rounds = Number(args.rounds);
const seed = Number(args.seed);
const backend = await selectBackend(args.backend);
const data = loadData();
const started = performance.now();
const seconds = () => Number(((performance.now() - started) / 1000).toFixed(1));
const results = { backend, epochs, lotteryEpochs, seed, machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version } };
const latencyBatch = tf.slice(data.test.x, 0, 256);
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
console.log(`backend ${backend}; dense and magnitude runs ${epochs} epochs, lottery rounds ${lotteryEpochs} epochs each`);

// Dense baseline, the reference for every comparison.
const dense = Model.create(lenet300100(), { seed });
await train(dense, data.train, { epochs, seed });
results.dense = accuracy(dense, data.test);
const denseReport = pruneReport(dense, { input: latencyBatch, repeats: backend === 'cpu' ? 5 : 20 });
results.denseReport = { params: denseReport.params, flops: denseReport.flops, latencyMs: denseReport.latencyMs };
console.log(`dense LeNet-300-100: ${pct(results.dense)} test accuracy, ${denseReport.params} parameters, ${denseReport.flops} FLOPs/digit, ${denseReport.latencyMs.toFixed(2)} ms per batch of 256 (${seconds()} s)`);

if (!args.only || args.only === 'magnitude') {
  // Start from the trained dense network (a copy) and prune it iteratively, retraining at a lower
  // learning rate after each round; pruned weights stay at zero through training.
  const model = loadFromBuffer(saveToBuffer(dense));
  const rows = [];
  await pruneIteratively(model, {
    finalSparsity: 0.914,
    finalSparsityPerParam: { 'fc3/kernel': 0.7 },
    rounds: 3,
    score: 'l1',
    scope: 'layer',
    retrain: async (m, round) => {
      const afterPrune = accuracy(m, data.test);
      m.resetOptimizerState();
      await train(m, data.train, { epochs: round === 2 ? epochs : Math.ceil(epochs / 2), learningRate: 1e-3, seed });
      rows.push({ round: round + 1, sparsity: weightSparsity(m), afterPrune, afterRetrain: accuracy(m, data.test) });
      console.log(`magnitude round ${round + 1}: ${pct(rows.at(-1).sparsity)} of weights removed: ${pct(afterPrune)} right after pruning, ${pct(rows.at(-1).afterRetrain)} after retraining (${seconds()} s)`);
    },
  });
  // Units whose every input weight is pruned output a constant, ReLU(bias). With a probe,
  // `materialize` removes exactly those whose constant is 0; `ignoreBias` without a probe removes
  // them all, dropping their constant's contribution (the accuracy before/after shows its cost).
  const exact = materialize(model, { probe: latencyBatch, ignoreBias: true });
  const beforeMaterialize = accuracy(model, data.test);
  const { removed } = materialize(model, { ignoreBias: true, reason: 'materialize: remove input-less units, dropping their constant output' });
  for (const [g, u] of Object.entries(exact.removed)) (removed[g] ??= []).push(...u);
  const afterMaterialize = accuracy(model, data.test);
  console.log(`materialize: ${Object.values(exact.removed).flat().length} input-less units with zero output removed exactly; ${Object.values(removed).flat().length} in all; accuracy ${pct(beforeMaterialize)} -> ${pct(afterMaterialize)}`);
  const report = pruneReport(model, { input: latencyBatch, repeats: backend === 'cpu' ? 5 : 20 });
  console.log(formatReport(report));
  results.magnitude = {
    dense: results.dense,
    epochs,
    rows,
    final: rows.at(-1),
    nonzero: report.nonzeroParams,
    weightsRemoved: 1 - report.nonzeroParams / denseReport.params,
    materialized: Object.fromEntries(Object.entries(removed).map(([g, u]) => [g, u.length])),
    beforeMaterialize,
    afterMaterialize,
    report,
    drop: results.dense - afterMaterialize,
  };
}

if (!args.only || args.only === 'lottery') {
  // `rounds` rounds: hidden layers keep 0.8^10 = 10.7% of their weights, the output layer 0.9^10 = 34.9%.
  const { rows, model } = await findLotteryTicket({
    create: (initSeed) => Model.create(lenet300100(), { seed: initSeed }),
    seed,
    train: async (m) => void (await train(m, data.train, { epochs: lotteryEpochs, seed })),
    evaluate: (m) => accuracy(m, data.test),
    rounds,
    rate: 0.2,
    outputRate: 0.1,
    control: true,
    onRound: (row) => {
      console.log(`lottery round ${row.round}: ${pct(row.remaining)} of weights remain, ticket ${pct(row.accuracy)}${row.controlAccuracy !== undefined ? `, random re-init ${pct(row.controlAccuracy)}` : ''} (${seconds()} s)`);
    },
  });
  console.log('\nround | weights remaining | ticket | random re-init');
  for (const r of rows) console.log(`${String(r.round).padStart(5)} | ${pct(r.remaining).padStart(17)} | ${pct(r.accuracy).padStart(6)} | ${r.controlAccuracy === undefined ? '' : pct(r.controlAccuracy)}`);
  results.lottery = { dense: results.dense, epochs: lotteryEpochs, rounds, rows, final: rows.at(-1), drop: results.dense - rows.at(-1).accuracy, controlGap: rows.at(-1).accuracy - rows.at(-1).controlAccuracy };
  model.dispose();
}

if (!args.only || args.only === 'snip') {
  const model = Model.create(lenet300100(), { seed });
  const index = tf.tensor1d([...Array(100).keys()], 'int32');
  const batch = { x: tf.gather(data.train.x, index), y: tf.gather(data.train.y, index) };
  pruneWeights(model, { sparsity: 0.95, score: 'snip', scope: 'global', context: { batches: [batch] }, reason: 'SNIP at initialisation, one batch of 100 digits' });
  const perLayer = Object.fromEntries(prunableParams(model).map((k) => [k, 1 - tf.tidy(() => tf.mean(model.param(k).mask).dataSync()[0])]));
  await train(model, data.train, { epochs, seed });
  results.snip = { dense: results.dense, epochs, sparsity: weightSparsity(model), perLayer, accuracy: accuracy(model, data.test) };
  results.snip.drop = results.dense - results.snip.accuracy;
  console.log(`SNIP at init, ${pct(results.snip.sparsity)} sparse (${Object.entries(perLayer).map(([k, v]) => `${k} ${pct(v)}`).join(', ')}): ${pct(results.snip.accuracy)} (dense ${pct(results.dense)}) (${seconds()} s)`);
  tf.dispose([index, batch.x, batch.y]);
  model.dispose();
}

console.log('\nexperiment | result | dense | drop | acceptance');
if (results.magnitude) console.log(`magnitude + retraining | ${pct(results.magnitude.weightsRemoved)} of parameters removed, ${pct(results.magnitude.afterMaterialize)} | ${pct(results.dense)} | ${(100 * results.magnitude.drop).toFixed(2)} pt | >= 90% removed, drop <= 0.5 pt`);
if (results.lottery) console.log(`lottery ticket | ${pct(results.lottery.final.remaining)} remain, ticket ${pct(results.lottery.final.accuracy)}, random re-init ${pct(results.lottery.final.controlAccuracy)} | ${pct(results.dense)} | ${(100 * results.lottery.drop).toFixed(2)} pt | drop <= 0.5 pt, control worse`);
if (results.snip) console.log(`SNIP 95% | ${pct(results.snip.accuracy)} | ${pct(results.dense)} | ${(100 * results.snip.drop).toFixed(2)} pt | drop <= 1.5 pt`);
results.seconds = seconds();
console.log(`total ${results.seconds} s`);

// Runs of single parts (--only) update their part of the results file; each part records the
// dense accuracy it was compared with (top-level fields are those of the latest run).
const dir = new URL('../../bench/results/', import.meta.url);
const file = new URL(`prune-mnist-${backend}.json`, dir);
mkdirSync(dir, { recursive: true });
const previous = args.only && existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
writeFileSync(file, JSON.stringify({ ...previous, name: 'prune-mnist', date: new Date().toISOString(), ...results }, null, 2) + '\n');
tf.dispose([latencyBatch, data.train.x, data.train.y, data.test.x, data.test.y]);
dense.dispose();
releaseBackend();
