// progressive-sequences: continual-learning table for progressive networks and the baselines,
// all in this run: split MNIST (5 tasks of 2 digits) and permuted MNIST (3 tasks of 10 digits),
// MLP columns 784-100-100-(2|10). Strategies: progressive (a column per task, laterals, frozen
// earlier columns), fine-tuning one network, an independent network per task, and Rusu et al.'s
// random-frozen column + new column. Metrics: ACC, BWT, FWT (Lopez-Paz & Ranzato 2017), final
// parameters. Usage: pnpm bench progressive-sequences [wasm|cpu] [--seed 0]
// The seed sets every network's initial weights and the order of the training batches (the tasks,
// and permuted MNIST's permutations, stay fixed); `pnpm bench seeds progressive-sequences` runs
// several.
import { parseArgs } from 'node:util';
import { tf, lenet300100, adam } from '@rs/core';
import { runSequence, ProgressiveNet } from '@rs/progressive';
import { loadMnist, splitMnist, permutedMnist } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';

const { values: args, positionals } = parseArgs({ options: { seed: { type: 'string', default: '0' } }, allowPositionals: true });
const backend = await selectBackend(positionals[0] ?? 'wasm');
const SEED = Number(args.seed);
const EPOCHS = 3;
const BATCH = 64;
const HIDDEN = [100, 100];
const STRATEGIES = ['progressive', 'finetune', 'independent', 'randomFrozen'];
const mnist = loadMnist();
const asTensors = (split, count = Infinity) => {
  const n = Math.min(count, split.count);
  return { x: tf.tensor2d(split.x.subarray(0, n * 784), [n, 784]), y: tf.tensor1d(split.y.subarray(0, n), 'int32') };
};
const sequences = {
  'split-mnist': { tasks: splitMnist(mnist), classes: 2, train: Infinity },
  'permuted-mnist': { tasks: permutedMnist(mnist, { tasks: 3, seed: 0 }), classes: 10, train: 4000 },
};

const table = [];
const details = {};
for (const [name, spec] of Object.entries(sequences)) {
  const tasks = spec.tasks.map((t) => ({ id: t.id, train: asTensors(t.train, spec.train), test: asTensors(t.test) }));
  const graph = lenet300100({ hidden: HIDDEN, classes: spec.classes });
  details[name] = { tasks: tasks.length, train_per_task: tasks.map((t) => t.train.y.shape[0]), test_per_task: tasks.map((t) => t.test.y.shape[0]) };
  for (const strategy of STRATEGIES) {
    const started = performance.now();
    const r = await runSequence(strategy, tasks, { graph, seed: SEED, train: { epochs: EPOCHS, batchSize: BATCH }, optimizer: () => adam({ learningRate: 1e-3 }) });
    const row = { sequence: name, strategy, acc: r.acc, bwt: r.bwt, fwt: r.fwt, params: r.params, steps: r.steps.reduce((a, b) => a + b, 0), seconds: (performance.now() - started) / 1000, matrix: r.matrix, baseline: r.baseline };
    table.push(row);
    console.log(`${name} ${strategy}: ACC ${r.acc.toFixed(4)} BWT ${r.bwt.toFixed(4)} FWT ${r.fwt.toFixed(4)} params ${r.params}`);
  }
  for (const t of tasks) tf.dispose([t.train.x, t.train.y, t.test.x, t.test.y]);
}
// Parameters per column of a 5-column network (column k has adapters from k earlier columns).
const grown = ProgressiveNet.create(lenet300100({ hidden: HIDDEN, classes: 2 }), { task: 0, seed: SEED });
const columnTotals = [];
for (let k = 1; k <= 5; k++) {
  if (k > 1) grown.addColumn(k - 1);
  columnTotals.push(grown.model.counts().params);
}
const columnParams = grown.columnParams();
grown.dispose();
console.log(columnParams.map((c) => `column ${c.index}: own ${c.own} adapters ${c.adapters}`).join('; '));
const get = (sequence, strategy) => table.find((r) => r.sequence === sequence && r.strategy === strategy);
writeResult(
  'progressive-sequences',
  {
    split_progressive_acc: get('split-mnist', 'progressive').acc,
    split_progressive_bwt: get('split-mnist', 'progressive').bwt,
    split_finetune_acc: get('split-mnist', 'finetune').acc,
    split_finetune_bwt: get('split-mnist', 'finetune').bwt,
    permuted_progressive_acc: get('permuted-mnist', 'progressive').acc,
    permuted_progressive_bwt: get('permuted-mnist', 'progressive').bwt,
    permuted_finetune_acc: get('permuted-mnist', 'finetune').acc,
    permuted_finetune_bwt: get('permuted-mnist', 'finetune').bwt,
    column5_adapter_params: columnParams[4].adapters,
    total_params_5_columns: columnTotals[4],
    backend,
  },
  { seed: SEED, columnParams, totalParamsByColumns: columnTotals, epochs: EPOCHS, batch: BATCH, hidden: HIDDEN, optimizer: 'adam 1e-3', table, sequences: details },
);
