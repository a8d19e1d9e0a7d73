// grow-vs-scratch: a small MLP (784-64-32-10) grown on validation plateaus with Net2WiderNet
// (@rs/grow growOnPlateau: every group widened at a plateau, fc1 by 64 and fc2 by 32 units, up
// to 256-128) vs the large network (784-256-128-10) trained from scratch, seeds 0, 1, 2 (one
// process per seed, in parallel).
//
// Protocol: Adam 2e-3, batch 128, the first 7,000 training digits; the last 1,000 training
// digits are the validation set (growth decisions). Scratch trains EPOCHS (20) epochs. The grown
// arm is compute-matched: it trains whole epochs for as long as its training FLOPs stay within
// FLOP_BUDGET (0.9) x the scratch arm's, i.e. it spends what the small phase saved on more
// epochs, as growth papers compare (loss or accuracy at equal or lower compute).
// FLOP_BUDGET=0 gives the equal-epoch protocol (the grown arm also trains EPOCHS epochs); the
// summary reports the grown arm's accuracy after EPOCHS epochs either way (same run).
// Reported: test accuracy (2,000 test digits) after the last epoch; details also give the
// accuracy at each arm's best-validation-accuracy epoch (checkpoint selection).
// Each seed is one process on a 1-thread wasm backend (THREADS to change), so runs are
// deterministic (2 threads do not sum in a fixed order).
// Training FLOPs: 3 x forward FLOPs per sample x samples (forward + backward) for every epoch,
// from the model's own FLOP count in that epoch, plus, for the grown arm, the gradient pass on
// the 512-digit scoring batch at each growth (validation passes, the same for both, not counted).
// summary.flop_ratio = mean grown FLOPs / mean scratch FLOPs; accuracies are means over seeds.
// Env overrides (FLOP_BUDGET, THREADS, STEP1, STEP2, MAX, START, METHOD, NOISE, OPT_STATE, SPLIT, SCHEDULE, GROWTH_LR, MIN_DELTA, PATIENCE, SELECT, EPOCHS,
// SEEDS, ARMS, RESULT) were used for the exploration in grow-vs-scratch-variants.json.
import { tf, Model, lenet300100, fit, evaluate, adam, cosineDecay } from '@rs/core';
import { growOnPlateau } from '@rs/grow';
import { loadMnist } from '@rs/datasets';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const EPOCHS = Number(process.env.EPOCHS ?? 20);
const FLOP_BUDGET = Number(process.env.FLOP_BUDGET ?? 0.9);
const THREADS = Number(process.env.THREADS ?? 1);
const SEEDS = (process.env.SEEDS ?? '0,1,2,3,4').split(',').map(Number);
const ARMS = (process.env.ARMS ?? 'scratch,grown').split(',');
const BATCH = 128;
const LR = 2e-3;
// SCHEDULE=cosine: both arms decay the learning rate from LR to 0 over all EPOCHS (cosine).
const SCHEDULE = process.env.SCHEDULE ?? 'constant';
const SCORE_ROWS = 512;
const GROWTH = {
  groups: ['fc1', 'fc2'],
  step: { fc1: Number(process.env.STEP1 ?? 64), fc2: Number(process.env.STEP2 ?? 32) },
  maxSize: Object.fromEntries((process.env.MAX ?? '256,128').split(',').map((v, i) => [`fc${i + 1}`, Number(v)])),
  select: process.env.SELECT ?? 'all',
  patience: Number(process.env.PATIENCE ?? 1),
  minDelta: Number(process.env.MIN_DELTA ?? 0.002),
  method: process.env.METHOD ?? 'net2net',
  noise: Number(process.env.NOISE ?? 0),
  optimizerState: process.env.OPT_STATE ?? 'zero',
  split: process.env.SPLIT ?? 'random',
};
if (SCHEDULE === 'cosine' && FLOP_BUDGET > 0) throw new Error('SCHEDULE=cosine decays over EPOCHS epochs; use it with FLOP_BUDGET=0 (equal epochs).');
const START = (process.env.START ?? '64,32').split(',').map(Number);

// With several seeds, each seed runs in its own process (the same script), in parallel.
const PARENT = SEEDS.length > 1 && !process.env.GVS_WORKER;
let train, validation, test, scoreBatch;
const N = 7000;
if (!PARENT) {
  await selectBackend(process.argv[2] ?? 'wasm', { threads: THREADS });
  const mnist = loadMnist();
  const all = { x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]), y: tf.tensor1d(mnist.train.y, 'int32') };
  train = { x: tf.slice(all.x, 0, N), y: tf.slice(all.y, 0, N) };
  validation = { x: tf.slice(all.x, N, 1000), y: tf.slice(all.y, N, 1000) };
  test = { x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]), y: tf.tensor1d(mnist.test.y, 'int32') };
  scoreBatch = { x: tf.slice(train.x, 0, SCORE_ROWS), y: tf.slice(train.y, 0, SCORE_ROWS) };
}

/** Records, at each epoch's end (before any growth), FLOPs so far, validation and test accuracy. */
function recorder() {
  const rec = {
    flops: 0,
    epochs: [],
    onEpochEnd(info) {
      rec.flops += 3 * info.model.counts().flops * N;
      const t = evaluate(info.model, test);
      rec.epochs.push({ epoch: info.epoch + 1, val_loss: info.valLoss, val_accuracy: info.valAccuracy, test_accuracy: t.accuracy, flops: rec.flops, widths: [info.model.group('fc1').size, info.model.group('fc2').size] });
    },
  };
  return rec;
}

function selected(epochs) {
  let best = epochs[0];
  for (const e of epochs) if (e.val_accuracy > best.val_accuracy || (e.val_accuracy === best.val_accuracy && e.val_loss < best.val_loss)) best = e;
  return best;
}

async function run(arm, seed) {
  const start = performance.now();
  const hidden = arm === 'scratch' ? [256, 128] : START;
  const model = Model.create(lenet300100({ hidden }), { seed });
  const rec = recorder();
  const callbacks = [rec];
  // GROWTH_LR: the grown arm's learning rate is multiplied by this factor at each growth epoch
  // (Net2Net trains the student at a lower rate); scratch keeps LR.
  let lrNow = LR;
  let grow;
  if (arm === 'grown') {
    grow = growOnPlateau({ ...GROWTH, budget: { params: Number(process.env.BUDGET ?? scratchCounts().params) }, batch: scoreBatch, seed });
    // The scoring pass at a growth: one forward + backward on the scoring batch.
    callbacks.push(grow, {
      seen: 0,
      onEpochEnd(info) {
        for (; this.seen < grow.history.length; this.seen++) {
          if (this.seen === 0 || grow.history[this.seen].epoch !== grow.history[this.seen - 1].epoch) {
            rec.flops += 3 * info.model.counts().flops * SCORE_ROWS;
            lrNow *= Number(process.env.GROWTH_LR ?? 1);
          }
        }
      },
    });
  }
  // Compute-matched grown arm: stop before the epoch that would take its training FLOPs past
  // FLOP_BUDGET x the scratch arm's (checked after any growth, at the size the next epoch has).
  const matched = arm === 'grown' && FLOP_BUDGET > 0;
  if (matched) {
    const budget = FLOP_BUDGET * EPOCHS * 3 * scratchCounts().flops * N;
    callbacks.push({
      onEpochEnd(info) {
        if (rec.flops + 3 * info.model.counts().flops * N > budget) info.stop();
      },
    });
  }
  const epochs = matched ? 4 * EPOCHS : EPOCHS;
  await fit(model, train, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: SCHEDULE === 'cosine' ? cosineDecay({ initial: LR, steps: EPOCHS * Math.ceil(N / BATCH) }) : () => lrNow }), epochs, batchSize: BATCH, seed, validation, callbacks });
  const best = selected(rec.epochs);
  const last = rec.epochs[rec.epochs.length - 1];
  const result = {
    seed,
    accuracy: last.test_accuracy,
    epochs_trained: rec.epochs.length,
    accuracy_after_epochs: rec.epochs[Math.min(EPOCHS, rec.epochs.length) - 1].test_accuracy,
    best_validation_epoch: best.epoch,
    accuracy_at_best_validation: best.test_accuracy,
    flops_total: rec.flops,
    flops_to_selected: best.flops,
    final_widths: [model.group('fc1').size, model.group('fc2').size],
    growth: grow?.history ?? [],
    epochs: rec.epochs,
    seconds: (performance.now() - start) / 1000,
  };
  console.log(`${arm} seed ${seed}: ${rec.epochs.length} epochs, test ${(100 * last.test_accuracy).toFixed(2)}% (after ${EPOCHS}: ${(100 * result.accuracy_after_epochs).toFixed(2)}%) (at the best validation epoch ${best.epoch}: ${(100 * best.test_accuracy).toFixed(2)}%), FLOPs ${rec.flops.toExponential(3)}, widths ${result.final_widths.join('-')}, ${result.seconds.toFixed(0)} s`);
  model.dispose();
  return result;
}

/** Parameter and FLOP counts of the scratch network (784-256-128-10). */
function scratchCounts() {
  const m = Model.create(lenet300100({ hidden: [256, 128] }), { seed: 0 });
  const counts = m.counts();
  m.dispose();
  return counts;
}

const runs = { scratch: [], grown: [] };
const started = performance.now();
if (PARENT) {
  const parts = await Promise.all(
    SEEDS.map(
      (seed) =>
        new Promise((resolve, reject) => {
          const child = fork(fileURLToPath(import.meta.url), process.argv.slice(2), { env: { ...process.env, SEEDS: String(seed), GVS_WORKER: '1' } });
          let got;
          child.on('message', (m) => (got = m));
          child.on('exit', (code) => (code === 0 && got ? resolve(got) : reject(new Error(`seed ${seed}: worker exited with code ${code}`))));
        }),
    ),
  );
  for (const part of parts) for (const arm of ARMS) runs[arm].push(...part[arm]);
} else {
  for (const seed of SEEDS) for (const arm of ARMS) runs[arm].push(await run(arm, seed));
  if (process.env.GVS_WORKER) {
    await new Promise((resolve) => process.send(runs, resolve));
    process.exit(0);
  }
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
const agg = (rs) => ({
  accuracy: mean(rs.map((r) => r.accuracy)),
  accuracy_std: std(rs.map((r) => r.accuracy)),
  accuracy_at_best_validation: mean(rs.map((r) => r.accuracy_at_best_validation)),
  accuracy_after_epochs: mean(rs.map((r) => r.accuracy_after_epochs)),
  epochs_trained: mean(rs.map((r) => r.epochs_trained)),
  flops_total: mean(rs.map((r) => r.flops_total)),
  flops_to_best_validation: mean(rs.map((r) => r.flops_to_selected)),
});
if (ARMS.length === 2) {
  const s = agg(runs.scratch);
  const g = agg(runs.grown);
  writeResult(
    process.env.RESULT ?? 'grow-vs-scratch',
    {
      flop_ratio: g.flops_total / s.flops_total,
      accuracy_grown: g.accuracy,
      accuracy_scratch: s.accuracy,
      seeds: SEEDS.length,
      accuracy_grown_std: g.accuracy_std,
      accuracy_scratch_std: s.accuracy_std,
      accuracy_grown_at_best_validation: g.accuracy_at_best_validation,
      accuracy_scratch_at_best_validation: s.accuracy_at_best_validation,
      [`accuracy_grown_after_${EPOCHS}_epochs`]: g.accuracy_after_epochs,
      epochs_grown: g.epochs_trained,
      flop_budget: FLOP_BUDGET,
      seeds_grown_at_least_scratch: runs.grown.filter((r, i) => r.accuracy >= runs.scratch[i].accuracy).length,
    },
    {
      wall_seconds: (performance.now() - started) / 1000,
      protocol: `Both arms: Adam ${LR}${SCHEDULE === 'cosine' ? ' with cosine decay to 0 over all epochs' : ''}, batch ${BATCH}, ${N} training digits, wasm with ${THREADS} thread(s), seeds ${SEEDS.join(', ')} (initialisation and shuffling); accuracy on the 2,000 test digits after the last epoch (and at the epoch of best accuracy on the 1,000 validation digits, ties to the lower validation loss). Scratch: 784-256-128-10, ${EPOCHS} epochs. Grown (${FLOP_BUDGET > 0 ? `compute-matched: whole epochs while its training FLOPs stay within ${FLOP_BUDGET} x scratch's` : `${EPOCHS} epochs`}): starts 784-${START.join('-')}-10, growOnPlateau (${JSON.stringify(GROWTH)}) up to 256-128. FLOPs = 3 x forward FLOPs x samples per epoch trained (+ the growth-scoring gradient pass on ${SCORE_ROWS} digits).`,
      scratch: runs.scratch,
      grown: runs.grown,
      mean: { scratch: s, grown: g },
    },
  );
} else {
  // A partial run (one arm, for exploring settings): print the curves, write no result.
  for (const [arm, rs] of Object.entries(runs)) for (const r of rs) console.log(arm, r.seed, JSON.stringify(r.growth.map((h) => [h.epoch + 1, h.group, h.units])), r.epochs.map((e) => `${e.epoch}:${(100 * e.test_accuracy).toFixed(2)}/${(100 * e.val_accuracy).toFixed(1)}`).join(' '));
  console.log(JSON.stringify(Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.length ? agg(v) : null]))));
}
