// progressive-transfer: forward transfer of progressive columns (Rusu et al. 2016) on a task
// sequence with little data per task, over 3 seeds. For every task after the first, the column
// with laterals from the trained earlier columns (progressive) is compared with a column trained
// from scratch (independent network, same architecture, same steps) and with Rusu et al.'s
// random-frozen-column baseline (laterals from an untrained, frozen column). Test accuracy is
// recorded every EVERY steps; steps_ratio = steps the lateral column needs to reach the scratch
// column's final accuracy / the scratch column's steps (Infinity when never reached).
// Usage: pnpm bench progressive-transfer [wasm|cpu] [mnist-split|split|permuted]
import { tf, lenet300100, adam } from '@rs/core';
import { runSequence } from '@rs/progressive';
import { loadMnist, splitMnist, permutedMnist } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';

const backend = await selectBackend(process.argv[2] ?? 'wasm');
const sequence = process.argv[3] ?? 'mnist-split';
const SEEDS = [0, 1, 2];
const TRAIN = Number(process.env.TRAIN ?? (sequence === 'permuted' ? 500 : 64));
const EPOCHS = Number(process.env.EPOCHS ?? 15);
const BATCH = 32;
const EVERY = Number(process.env.EVERY ?? 1);
const HIDDEN = [100, 100];
const TASKS = Number(process.env.TASKS ?? (sequence === 'permuted' ? 3 : 5));
const LR = Number(process.env.LR ?? 1e-3);
const FIRST_EPOCHS = Number(process.env.FIRST_EPOCHS ?? 2);

const mnist = loadMnist();
const asTensors = (split, count) => {
  const n = Math.min(count, split.count);
  return { x: tf.tensor2d(split.x.subarray(0, n * 784), [n, 784]), y: tf.tensor1d(split.y.subarray(0, n), 'int32') };
};
const raw = sequence === 'permuted' ? permutedMnist(mnist, { tasks: TASKS, seed: 0 }) : splitMnist(mnist);
let tasks = raw.slice(0, TASKS).map((t) => ({ id: t.id + (sequence === 'mnist-split' ? 1 : 0), train: asTensors(t.train, TRAIN), test: asTensors(t.test, Infinity) }));
const graph = lenet300100({ hidden: HIDDEN, classes: sequence === 'permuted' ? 10 : 2 });
if (sequence === 'mnist-split') {
  // Task 0: all ten digits with all 8,000 training images; then the split-MNIST pairs with little data.
  const full = { id: 0, train: asTensors(mnist.train, Infinity), test: asTensors(mnist.test, Infinity), graph: lenet300100({ hidden: HIDDEN, classes: 10 }), epochs: FIRST_EPOCHS, curve: false };
  tasks = [full, ...tasks];
}

/** First curve step at which accuracy >= target (Infinity when never). */
const stepsToReach = (curve, target) => curve.find(([, a]) => a >= target - 1e-12)?.[0] ?? Infinity;

const runs = [];
for (const seed of SEEDS) {
  const options = { graph, seed, train: { epochs: EPOCHS, batchSize: BATCH }, optimizer: () => adam({ learningRate: LR }), curveEvery: EVERY };
  const started = performance.now();
  const pnn = await runSequence('progressive', tasks, options);
  const scratch = await runSequence('independent', tasks, options);
  const random = await runSequence('randomFrozen', tasks, options);
  const perTask = [];
  for (let k = 1; k < tasks.length; k++) {
    const scratchFinal = scratch.matrix[k][k];
    const reach = stepsToReach(pnn.curves[k], scratchFinal);
    perTask.push({
      task: k,
      scratch_final: scratchFinal,
      progressive_final: pnn.matrix[k][k],
      random_frozen_final: random.matrix[k][k],
      steps: scratch.steps[k],
      progressive_steps_to_scratch_final: reach,
      steps_ratio: reach / scratch.steps[k],
      random_frozen_steps_to_scratch_final: stepsToReach(random.curves[k], scratchFinal),
    });
  }
  const mean = (f) => perTask.reduce((s, t) => s + f(t), 0) / perTask.length;
  const run = {
    seed,
    seconds: (performance.now() - started) / 1000,
    mean_steps_ratio: mean((t) => t.steps_ratio),
    mean_progressive_final: mean((t) => t.progressive_final),
    mean_scratch_final: mean((t) => t.scratch_final),
    mean_random_frozen_final: mean((t) => t.random_frozen_final),
    perTask,
    curves: { progressive: pnn.curves, scratch: scratch.curves, randomFrozen: random.curves },
  };
  runs.push(run);
  console.log(`seed ${seed}: ratio ${run.mean_steps_ratio.toFixed(3)} final pnn ${run.mean_progressive_final.toFixed(4)} scratch ${run.mean_scratch_final.toFixed(4)} random-frozen ${run.mean_random_frozen_final.toFixed(4)} (${run.seconds.toFixed(0)} s)`);
  console.log(perTask.map((t) => `  task ${t.task}: ${t.progressive_steps_to_scratch_final}/${t.steps} pnn ${t.progressive_final.toFixed(4)} scratch ${t.scratch_final.toFixed(4)} rf ${t.random_frozen_final.toFixed(4)}`).join('\n'));
}
const all = (f) => runs.every(f);
writeResult(
  `progressive-transfer-${sequence}`,
  {
    sequence,
    seeds: SEEDS.length,
    steps_ratio_max: Math.max(...runs.map((r) => r.mean_steps_ratio)),
    steps_ratio_mean: runs.reduce((s, r) => s + r.mean_steps_ratio, 0) / runs.length,
    progressive_final: runs.reduce((s, r) => s + r.mean_progressive_final, 0) / runs.length,
    scratch_final: runs.reduce((s, r) => s + r.mean_scratch_final, 0) / runs.length,
    random_frozen_final: runs.reduce((s, r) => s + r.mean_random_frozen_final, 0) / runs.length,
    reaches_in_0_7x_all_seeds: all((r) => r.mean_steps_ratio <= 0.7),
    beats_random_frozen_all_seeds: all((r) => r.mean_progressive_final > r.mean_random_frozen_final),
    backend,
  },
  { train_per_task: TRAIN, first_task_epochs: sequence === 'mnist-split' ? FIRST_EPOCHS : EPOCHS, epochs: EPOCHS, batch: BATCH, every: EVERY, hidden: HIDDEN, tasks: TASKS, learningRate: LR, runs },
);
