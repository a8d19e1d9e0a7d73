// grow-anytime: growth within one run (the LiGO / "compute saved to reach a target" claim), on
// the Moby Dick MLP language model of grow-vs-scratch (bench/lib/grow-tasks.mjs). Every arm
// trains until its training FLOPs reach the same budget B (that of BUDGET_EPOCHS segments of
// 25,600 windows at the final size 256-128):
// - grown: starts at hidden 64-32, Net2Net-widened (@rs/grow widen, random split, new units'
//   Adam moments zero) to 128-64 when its FLOPs reach B/12 and to 256-128 at B/4 (the schedule,
//   declared before any run);
// - small (64-32), medium (128-64), large (256-128: scratch at the final size), trained from a
//   random initialization.
// FLOPs = 3 x forward FLOPs per sample x batch for every step, at the size the step runs at.
// Validation loss (4,000 windows of the first half of the held-out text) is measured every B/30
// FLOPs; test loss (20,000 windows of the second half) at the end. All arms of a seed see the
// same stream of batches.
//
// Two stages, the second reading what the first decided (rules declared before either ran):
// 1. MODE=explore, seed 100: each arm with each learning rate of LEARNING_RATES (Adam). Per arm
//    the rate with the lowest final validation loss is kept. The target = the large arm's
//    validation loss at B/3 FLOPs (at its kept rate; interpolated between checkpoints), rounded
//    to 0.01. Written to bench/results/grow-anytime-explore.json, committed before stage 2.
// 2. MODE=final (default), seeds 0-4: each arm at its kept rate. Reported per seed: FLOPs to the
//    target (interpolated between checkpoints; an arm that never reaches it counts as B and is
//    listed), final test loss at B.
// Acceptance (issue 25): mean over seeds of grown / large FLOPs to target <= 0.8; grown's mean
// FLOPs to target below the lowest mean of small, medium and large; grown's mean final test
// loss <= large's + 0.01 nats (non-inferiority at equal FLOPs).
//   node bench/grow-anytime.mjs                 (final)
//   MODE=explore node bench/grow-anytime.mjs
import { Model, adam, evaluate } from '@rs/core';
import { widen } from '@rs/grow';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';
import { loadTask, trainWithCheckpoints, firstReach, stepFlops, spread, mean, runJobs, currentJob, finishJob, BATCH } from './lib/grow-tasks.mjs';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const SETTINGS = {
  budgetEpochs: 6,
  segment: 25600,
  sizes: { small: [64, 32], medium: [128, 64], large: [256, 128] },
  // Grown: [fraction of B at which it widens, the width it widens to].
  schedule: [
    [1 / 12, [128, 64]],
    [1 / 4, [256, 128]],
  ],
  checkpoints: 30,
  validationWindows: 4000,
  learningRates: [1e-3, 2e-3, 4e-3],
  exploreSeeds: [100],
  seeds: [0, 1, 2, 3, 4],
  targetAt: 1 / 3,
  arms: ['grown', 'small', 'medium', 'large'],
};

const job = currentJob();
if (job) {
  await selectBackend('wasm', { threads: 1 });
  await finishJob(await runArm(job.arm, job.seed, job.learningRate));
}

async function runArm(arm, seed, learningRate) {
  const started = performance.now();
  const task = loadTask('moby-dick', { validationWindows: SETTINGS.validationWindows });
  const large = Model.create(task.build(SETTINGS.sizes.large), { seed: 0 });
  // SMOKE=1: a 0.2-segment budget, to check the script end to end (never reported).
  const budget = (process.env.SMOKE ? 0.2 : SETTINGS.budgetEpochs) * SETTINGS.segment * 3 * large.counts().flops;
  large.dispose();
  const model = Model.create(task.build(arm === 'grown' ? SETTINGS.sizes.small : SETTINGS.sizes[arm]), { seed });
  const growths = [];
  const every = budget / SETTINGS.checkpoints;
  const state = await trainWithCheckpoints(model, adam({ learningRate }), task.stream(seed), {
    validation: task.validation,
    seed,
    checkpoint: (s) => Math.floor(s.flops / every) > Math.floor((s.flops - s.lastStepFlops) / every),
    beforeStep(s) {
      s.lastStepFlops = stepFlops(model);
      if (arm !== 'grown') return;
      for (const [fraction, [h1, h2]] of SETTINGS.schedule) {
        if (s.flops >= fraction * budget && model.group('fc1').size < h1) {
          widen(model, 'fc1', h1 - model.group('fc1').size, { seed: seed + growths.length });
          widen(model, 'fc2', h2 - model.group('fc2').size, { seed: seed + growths.length + 100 });
          growths.push({ step: s.steps, flops: s.flops, widths: [h1, h2] });
          s.lastStepFlops = stepFlops(model);
        }
      }
    },
    stop: (s) => s.flops + stepFlops(model) > budget,
  });
  const test = evaluate(model, task.test, { batchSize: 1000 });
  const result = {
    arm,
    seed,
    learning_rate: learningRate,
    budget_flops: budget,
    flops: state.flops,
    steps: state.steps,
    windows: state.steps * BATCH,
    final_val_loss: state.curve[state.curve.length - 1].val_loss,
    test_loss: test.loss,
    test_accuracy: test.accuracy,
    growths,
    curve: state.curve.map((c) => [c.step, c.flops, Number(c.val_loss.toFixed(5))]),
    seconds: (performance.now() - started) / 1000,
  };
  console.log(`${arm} seed ${seed} lr ${learningRate}: ${state.steps} steps, final validation ${result.final_val_loss.toFixed(4)}, test ${test.loss.toFixed(4)}, ${result.seconds.toFixed(0)} s`);
  model.dispose();
  return result;
}

const curveOf = (r) => r.curve.map(([step, flops, val_loss]) => ({ step, flops, val_loss }));

if (!job) {
  const mode = process.env.MODE ?? 'final';
  const script = fileURLToPath(import.meta.url);
  const concurrency = Number(process.env.CONCURRENCY ?? 2);
  const started = performance.now();
  if (mode === 'explore') {
    const exploreSeeds = process.env.SMOKE && process.env.SEEDS ? process.env.SEEDS.split(',').map(Number) : SETTINGS.exploreSeeds;
    const jobs = exploreSeeds.flatMap((seed) => SETTINGS.arms.flatMap((arm) => SETTINGS.learningRates.map((learningRate) => ({ arm, seed, learningRate }))));
    const runs = await runJobs(script, jobs, concurrency);
    const chosen = {};
    for (const arm of SETTINGS.arms) {
      const byRate = SETTINGS.learningRates.map((lr) => ({ lr, loss: mean(runs.filter((r) => r.arm === arm && r.learning_rate === lr).map((r) => r.final_val_loss)) }));
      chosen[arm] = byRate.reduce((a, b) => (b.loss < a.loss ? b : a)).lr;
    }
    const largeRuns = runs.filter((r) => r.arm === 'large' && r.learning_rate === chosen.large);
    const levels = largeRuns.map((r) => {
      const c = curveOf(r);
      const at = SETTINGS.targetAt * r.budget_flops;
      const i = c.findIndex((p) => p.flops >= at);
      const a = c[i - 1];
      const b = c[i];
      return a.val_loss + ((at - a.flops) / (b.flops - a.flops)) * (b.val_loss - a.val_loss);
    });
    const target = Math.round(100 * mean(levels)) / 100;
    writeResult(process.env.RESULT ?? 'grow-anytime-explore', { target, ...Object.fromEntries(SETTINGS.arms.map((a) => [`learning_rate_${a}`, chosen[a]])), seeds: exploreSeeds.length }, { settings: SETTINGS, large_level_at_target_fraction: levels, wall_seconds: (performance.now() - started) / 1000, runs });
  } else {
    const explore = JSON.parse(readFileSync(new URL(`./results/${process.env.EXPLORE ?? 'grow-anytime-explore'}.json`, import.meta.url), 'utf8'));
    const { target } = explore.summary;
    const seeds = process.env.SEEDS ? process.env.SEEDS.split(',').map(Number) : SETTINGS.seeds;
    const arms = (process.env.ARMS ?? SETTINGS.arms.join(',')).split(',');
    // A partial run (SEEDS or ARMS set) is summarised too (resuming through GROW_CACHE), but only
    // the full one replaces bench/results/grow-anytime.json unless RESULT names another file.
    const partial = seeds.join() !== SETTINGS.seeds.join() || arms.join() !== SETTINGS.arms.join();
    const jobs = seeds.flatMap((seed) => arms.map((arm) => ({ arm, seed, learningRate: explore.summary[`learning_rate_${arm}`] })));
    const runs = await runJobs(script, jobs, concurrency);
    const budget = runs[0].budget_flops;
    const per = {};
    for (const arm of arms) {
      const rs = seeds.map((seed) => runs.find((r) => r.arm === arm && r.seed === seed));
      for (const r of rs) r.flops_to_target = firstReach(curveOf(r), target, 'flops');
      per[arm] = {
        learning_rate: explore.summary[`learning_rate_${arm}`],
        flops_to_target: spread(rs.map((r) => r.flops_to_target ?? budget)),
        not_reached: rs.filter((r) => r.flops_to_target === null).map((r) => r.seed),
        test_loss: spread(rs.map((r) => r.test_loss)),
        final_val_loss: spread(rs.map((r) => r.final_val_loss)),
      };
    }
    const summary = { target, seeds: seeds.length, arms: arms.join(',') };
    if (arms.includes('grown') && arms.includes('large')) {
      const ratios = seeds.map((seed) => {
        const g = runs.find((r) => r.arm === 'grown' && r.seed === seed);
        const l = runs.find((r) => r.arm === 'large' && r.seed === seed);
        return (g.flops_to_target ?? budget) / (l.flops_to_target ?? budget);
      });
      const fixed = arms.filter((a) => a !== 'grown');
      const best = fixed.reduce((a, b) => (per[b].flops_to_target.mean < per[a].flops_to_target.mean ? b : a));
      Object.assign(summary, {
        flops_ratio_vs_large_mean: mean(ratios),
        flops_ratio_vs_large_max: Math.max(...ratios),
        best_fixed: best,
        flops_ratio_vs_best_fixed: per.grown.flops_to_target.mean / per[best].flops_to_target.mean,
        test_loss_grown: per.grown.test_loss.mean,
        test_loss_large: per.large.test_loss.mean,
        non_inferior: per.grown.test_loss.mean <= per.large.test_loss.mean + 0.01,
      });
      per.ratios_vs_large = spread(ratios);
    }
    writeResult(process.env.RESULT ?? (partial ? 'grow-anytime-partial' : 'grow-anytime'), summary, { settings: SETTINGS, budget_flops: budget, explore: explore.summary, seeds_run: seeds, per_arm: per, wall_seconds: (performance.now() - started) / 1000, runs });
  }
}
