// grow-from-teacher: the Net2Net regime (Chen et al. 2016). A small model (the teacher, hidden
// 64-32) is trained; its cost is paid. It is grown to the large size (256-128) and trained on;
// how many steps does each start need to reach a validation-loss target declared before the run?
//
// Arms, all trained identically after the teacher (fresh Adam, the same learning rate and batch,
// the same batches, which follow the teacher's in the same seeded stream):
// - net2net: @rs/grow widen fc1 +192 and fc2 +96 (random split, no noise: function-preserving);
// - gradmax: @rs/grow growGradMax fc1 +192 then fc2 +96 (zero fan-in, fan-out from the gradient
//   on a 512-row training sample, bias 1e-6 as growOnPlateau uses; function-preserving to 1e-6);
// - random-pad: the teacher's weights kept, the new units' incoming and outgoing weights drawn by
//   the layers' initializers (not function-preserving; the keras Net2Net example's baseline);
// - random-large: the large model from a random initialization.
// Reported: steps to the target, linearly interpolated between validation checkpoints (first
// checkpoint at or below the target and the one before it); null if not reached within the cap.
// summary.steps_ratio_* = net2net steps / random-large steps, per seed; a seed where random-large
// never reaches the target counts with its cap (a lower bound on its steps, so the ratio is an
// upper bound). Each (task, seed) runs in its own process on a 1-thread wasm backend
// (deterministic).
//
// SETTINGS are declared here before the reported run. The targets follow one rule, fixed before
// any run of this benchmark: the mean validation loss of the large model trained from scratch
// (same data, Adam 2e-3, batch 128) after as many steps as the teacher trains, read from the
// scratch arm of bench/results/grow-vs-scratch-mnist.json (epoch 3: 0.1971 over seeds 0-4) and
// bench/results/grow-vs-scratch.json (epoch 6: 2.0576), rounded to 0.01. That is: the level a
// large model would have reached had the teacher's steps been spent on it.
//   node bench/grow-from-teacher.mjs            (both tasks, seeds 0-4)
//   TASKS=mnist SEEDS=0 node bench/grow-from-teacher.mjs   (a partial run, written under RESULT)
import { tf, Model, adam, evaluate, saveToBuffer, loadFromBuffer } from '@rs/core';
import { widen, growGradMax } from '@rs/grow';
import { selectBackend } from './lib/backends.mjs';
import { writeResult } from './lib/results.mjs';
import { loadTask, trainWithCheckpoints, firstReach, spread, mean, runJobs, currentJob, finishJob } from './lib/grow-tasks.mjs';
import { fileURLToPath } from 'node:url';

export const SETTINGS = {
  seeds: [0, 1, 2, 3, 4],
  teacher: [64, 32],
  large: [256, 128],
  learningRate: 2e-3,
  batch: 128,
  gradmaxRows: 512,
  tasks: {
    // 3 epochs of 55 steps; validation every 10 steps; cap 10 epochs.
    mnist: { teacherSteps: 165, target: 0.2, evalEvery: 10, maxSteps: 550 },
    // 6 segments of 200 steps (25,600 windows); validation (10,000 windows) every 100 steps; cap 2x the teacher.
    'moby-dick': { teacherSteps: 1200, target: 2.06, evalEvery: 100, maxSteps: 2400 },
  },
  arms: ['net2net', 'gradmax', 'random-pad', 'random-large'],
};

const job = currentJob();
if (job) {
  await selectBackend('wasm', { threads: 1 });
  await finishJob(await runSeed(job.task, job.seed));
}

async function runSeed(taskName, seed) {
  const started = performance.now();
  const task = loadTask(taskName);
  const cfg = SETTINGS.tasks[taskName];
  const next = task.stream(seed);
  const teacher = Model.create(task.build(SETTINGS.teacher), { seed });
  const until = (n) => ({ checkpoint: (s) => s.steps % cfg.evalEvery === 0, stop: (s) => s.steps >= n });
  const t = await trainWithCheckpoints(teacher, adam({ learningRate: SETTINGS.learningRate }), next, { validation: task.validation, ...until(cfg.teacherSteps), seed });
  const teacherLoss = t.curve[t.curve.length - 1].val_loss;
  const teacherBytes = saveToBuffer(teacher);
  // Every arm sees the same batches after the teacher's: materialise them once.
  const batches = [];
  const replay = () => {
    let i = 0;
    return () => {
      while (batches.length <= i) batches.push(next());
      const b = batches[i++];
      return { x: tf.clone(b.x), y: tf.clone(b.y) };
    };
  };
  const sample = task.sample ? task.sample(SETTINGS.gradmaxRows) : { x: tf.slice(task.train.x, 0, SETTINGS.gradmaxRows), y: tf.slice(task.train.y, 0, SETTINGS.gradmaxRows) };
  const [d1, d2] = [SETTINGS.large[0] - SETTINGS.teacher[0], SETTINGS.large[1] - SETTINGS.teacher[1]];
  const arms = {};
  for (const arm of SETTINGS.arms) {
    let model;
    if (arm === 'random-large') model = Model.create(task.build(SETTINGS.large), { seed: seed + 7919 });
    else {
      model = loadFromBuffer(teacherBytes);
      if (arm === 'net2net') {
        widen(model, 'fc1', d1, { seed });
        widen(model, 'fc2', d2, { seed: seed + 1 });
      } else if (arm === 'gradmax') {
        growGradMax(model, 'fc1', d1, { batch: sample, bias: 1e-6 });
        growGradMax(model, 'fc2', d2, { batch: sample, bias: 1e-6 });
      } else {
        model.edit((tx) => {
          tx.insertUnits('fc1', d1, { incoming: 'init', outgoing: 'init' });
          tx.insertUnits('fc2', d2, { incoming: 'init', outgoing: 'init' });
        }, { technique: 'grow', reason: 'random padding baseline' });
      }
    }
    const startLoss = evaluate(model, task.validation, { batchSize: 1000 }).loss;
    const state = await trainWithCheckpoints(model, adam({ learningRate: SETTINGS.learningRate }), replay(), {
      validation: task.validation,
      checkpoint: (s) => s.steps % cfg.evalEvery === 0,
      // Stop at the first checkpoint at or below the target, or at the cap.
      stop: (s) => s.steps >= cfg.maxSteps || (s.curve.length > 0 && s.curve[s.curve.length - 1].val_loss <= cfg.target),
      seed,
    });
    const steps = firstReach(state.curve, cfg.target, 'step');
    arms[arm] = { steps_to_target: steps, reached: steps !== null, start_val_loss: startLoss, final_val_loss: state.curve[state.curve.length - 1].val_loss, steps_trained: state.steps, curve: state.curve.map((c) => [c.step, Number(c.val_loss.toFixed(5))]) };
    console.log(`${taskName} seed ${seed} ${arm}: start ${startLoss.toFixed(4)}, steps to ${cfg.target}: ${steps === null ? `not reached in ${cfg.maxSteps}` : steps.toFixed(1)}`);
    model.dispose();
  }
  tf.dispose(batches.flatMap((b) => [b.x, b.y]));
  teacher.dispose();
  return { task: taskName, seed, teacher_val_loss: teacherLoss, teacher_curve: t.curve.map((c) => [c.step, Number(c.val_loss.toFixed(5))]), arms, seconds: (performance.now() - started) / 1000 };
}

if (!job) {
  const tasks = (process.env.TASKS ?? 'mnist,moby-dick').split(',');
  const seeds = process.env.SEEDS ? process.env.SEEDS.split(',').map(Number) : SETTINGS.seeds;
  const partial = tasks.join() !== Object.keys(SETTINGS.tasks).join() || seeds.join() !== SETTINGS.seeds.join();
  if (partial && !process.env.RESULT) throw new Error('A partial run (TASKS or SEEDS set) needs RESULT=<name>: it must not replace bench/results/grow-from-teacher.json.');
  const started = performance.now();
  const jobs = tasks.flatMap((task) => seeds.map((seed) => ({ task, seed })));
  const results = await runJobs(fileURLToPath(import.meta.url), jobs, Number(process.env.CONCURRENCY ?? 2));
  const summary = {};
  const perTask = {};
  for (const task of tasks) {
    const cfg = SETTINGS.tasks[task];
    const rs = results.filter((r) => r.task === task);
    const stepsOf = (r, arm) => r.arms[arm].steps_to_target ?? cfg.maxSteps;
    const ratio = (arm) => rs.map((r) => stepsOf(r, arm) / stepsOf(r, 'random-large'));
    const n2n = ratio('net2net');
    const prefix = task === 'mnist' ? '' : 'lm_';
    const stepsMean = (arm) => mean(rs.map((r) => stepsOf(r, arm)));
    Object.assign(summary, {
      [`${prefix}steps_ratio_mean`]: mean(n2n),
      [`${prefix}steps_ratio_max`]: Math.max(...n2n),
      [`${prefix}beats_padding`]: stepsMean('net2net') < stepsMean('random-pad'),
      [`${prefix}gradmax_steps_ratio_mean`]: mean(ratio('gradmax')),
      [`${prefix}target`]: cfg.target,
    });
    perTask[task] = {
      settings: cfg,
      steps_to_target: Object.fromEntries(SETTINGS.arms.map((arm) => [arm, spread(rs.map((r) => stepsOf(r, arm)))])),
      not_reached: Object.fromEntries(SETTINGS.arms.map((arm) => [arm, rs.filter((r) => !r.arms[arm].reached).map((r) => r.seed)])),
      net2net_over_random_large: spread(n2n),
      gradmax_over_random_large: spread(ratio('gradmax')),
      random_pad_over_random_large: spread(ratio('random-pad')),
      teacher_val_loss: spread(rs.map((r) => r.teacher_val_loss)),
      per_seed: rs,
    };
  }
  summary.seeds = seeds.length;
  writeResult(process.env.RESULT ?? 'grow-from-teacher', summary, {
    settings: SETTINGS,
    tasks_run: tasks,
    seeds_run: seeds,
    wall_seconds: (performance.now() - started) / 1000,
    protocol:
      'Teacher hidden 64-32 trained teacherSteps steps (Adam 2e-3, batch 128); grown to 256-128 (net2net: widen random split; gradmax: growGradMax bias 1e-6 on 512 training rows; random-pad: new units from the initializers), or a random 256-128 model; each trained with a fresh Adam 2e-3, batch 128, on the same batches (those after the teacher\'s in the seed\'s stream) until the validation loss is at or below the target or maxSteps. Steps to target interpolated between checkpoints; an arm that never reaches it counts as maxSteps. wasm, 1 thread, one process per task and seed.',
    ...perTask,
  });
}
