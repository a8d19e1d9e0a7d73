// Shared by the growth benchmarks (grow-from-teacher, grow-anytime): the two tasks, a seeded
// stream of training batches, a step-level training loop that evaluates at checkpoints, the
// steps/FLOPs at which a validation-loss target is first reached, and one process per job.
//
// Tasks (the same data as grow-vs-scratch, so its curves are comparable):
// - `mnist`: 784-input MLP (lenet300100 with the given hidden widths); training = the first 7,000
//   training digits (reshuffled every epoch, seeded), validation = the next 1,000, test = the
//   2,000 test digits.
// - `moby-dick`: the Bengio-style MLP language model of grow-vs-scratch (8 previous characters ->
//   embedding 16 each -> flatten -> fc1 -> relu -> fc2 -> relu -> fc3 over the 83 characters);
//   training windows in one seeded pass over the first 90% of the book (a new seeded pass when
//   it is used up), validation = windows spaced over the first half of the held-out 10%, test =
//   20,000 windows spaced over its second half.
import { tf, Model, lenet300100, evaluate, trainStep, softmaxCrossEntropy, createRng, permutation } from '@rs/core';
import { loadMnist, loadMobyDick } from '@rs/datasets';
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export const CONTEXT = 8;
export const BATCH = 128;

/** `count` window starts spread evenly over [0, positions). */
export function spaced(positions, count) {
  return Int32Array.from({ length: count }, (_, i) => Math.floor((i * positions) / count));
}

/** Next-character windows: x = the CONTEXT characters from each start, y = the one after them. */
export function windows(ids, starts) {
  const x = new Int32Array(starts.length * CONTEXT);
  const y = new Int32Array(starts.length);
  starts.forEach((s, i) => {
    x.set(ids.subarray(s, s + CONTEXT), i * CONTEXT);
    y[i] = ids[s + CONTEXT];
  });
  return { x: tf.tensor2d(x, [starts.length, CONTEXT], 'int32'), y: tf.tensor1d(y, 'int32') };
}

/** The MLP language model (fc1, fc2 hidden; fc3 over the characters). */
export function charMlp(vocabSize, [h1, h2]) {
  return {
    inputs: [{ id: 'x', shape: [null, CONTEXT], dtype: 'int32' }],
    nodes: [
      { id: 'embed', op: 'embedding', inputs: ['x'], attrs: { vocabSize, dim: 16 } },
      { id: 'flat', op: 'flatten', inputs: ['embed'], attrs: {} },
      { id: 'fc1', op: 'dense', inputs: ['flat'], attrs: { units: h1 } },
      { id: 'relu1', op: 'relu', inputs: ['fc1'], attrs: {} },
      { id: 'fc2', op: 'dense', inputs: ['relu1'], attrs: { units: h2 } },
      { id: 'relu2', op: 'relu', inputs: ['fc2'], attrs: {} },
      { id: 'fc3', op: 'dense', inputs: ['relu2'], attrs: { units: vocabSize } },
    ],
    outputs: ['fc3'],
  };
}

/**
 * The task's data and model builder. `stream(seed)` returns `next()`, giving the next training
 * batch ({ x, y }, the caller disposes it); the same seed gives the same batches.
 */
export function loadTask(name, { validationWindows = 10000 } = {}) {
  if (name === 'mnist') {
    const mnist = loadMnist();
    const all = { x: tf.tensor2d(mnist.train.x, [mnist.train.count, 784]), y: tf.tensor1d(mnist.train.y, 'int32') };
    const N = 7000;
    const train = { x: tf.slice(all.x, 0, N), y: tf.slice(all.y, 0, N) };
    const validation = { x: tf.slice(all.x, N, 1000), y: tf.slice(all.y, N, 1000) };
    const test = { x: tf.tensor2d(mnist.test.x, [mnist.test.count, 784]), y: tf.tensor1d(mnist.test.y, 'int32') };
    tf.dispose([all.x, all.y]);
    return {
      name,
      build: (hidden) => lenet300100({ hidden }),
      train,
      validation,
      test,
      stream(seed) {
        const rng = createRng(seed);
        let order = permutation(N, rng);
        let at = 0;
        return () => {
          if (at + BATCH > N) {
            order = permutation(N, rng);
            at = 0;
          }
          const index = tf.tensor1d(order.subarray(at, at + BATCH), 'int32');
          at += BATCH;
          const batch = { x: tf.gather(train.x, index), y: tf.gather(train.y, index) };
          index.dispose();
          return batch;
        };
      },
    };
  }
  if (name !== 'moby-dick') throw new Error(`task must be mnist or moby-dick, got ${name}`);
  const book = loadMobyDick();
  const held = book.validation;
  const half = Math.floor(held.length / 2);
  return {
    name,
    build: (hidden) => charMlp(book.vocab.length, hidden),
    validation: windows(held.subarray(0, half), spaced(half - CONTEXT, validationWindows)),
    test: windows(held.subarray(half), spaced(held.length - half - CONTEXT, 20000)),
    sample: (rows) => windows(book.train, spaced(book.train.length - CONTEXT, rows)),
    stream(seed) {
      const positions = book.train.length - CONTEXT;
      let pass = 0;
      let order;
      let at = 0;
      const shuffle = () => {
        // The pass's order: the seed's permutation of all window starts (pass 0 is grow-vs-scratch's).
        const rng = createRng(pass === 0 ? seed : seed * 1000 + pass);
        order = Int32Array.from({ length: positions }, (_, i) => i);
        for (let i = order.length - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          [order[i], order[j]] = [order[j], order[i]];
        }
        at = 0;
      };
      shuffle();
      return () => {
        if (at + BATCH > order.length) {
          pass += 1;
          shuffle();
        }
        const batch = windows(book.train, order.subarray(at, at + BATCH));
        at += BATCH;
        return batch;
      };
    },
  };
}

/** Training FLOPs of one step: forward + backward = 3 x the model's forward FLOPs per sample x batch. */
export const stepFlops = (model) => 3 * model.counts().flops * BATCH;

/**
 * Trains `model` with `optimizer` on batches from `next()` and evaluates the validation loss at
 * step 0 and whenever `checkpoint(state)` says so. Stops when `stop(state)` is true (checked
 * before each step, after `beforeStep`). state = { steps, flops, curve }; curve = [{ step, flops,
 * val_loss }]. `beforeStep(state)` may grow the model (FLOPs are counted at the current size).
 */
export async function trainWithCheckpoints(model, optimizer, next, { validation, checkpoint, stop, beforeStep, seed }) {
  const rng = createRng(seed);
  const state = { steps: 0, flops: 0, curve: [] };
  const record = () => state.curve.push({ step: state.steps, flops: state.flops, val_loss: evaluate(model, validation, { batchSize: 1000 }).loss });
  record();
  for (;;) {
    beforeStep?.(state);
    if (stop(state)) break;
    const batch = next();
    const flops = stepFlops(model);
    trainStep(model, [batch.x], batch.y, softmaxCrossEntropy, optimizer, rng);
    tf.dispose([batch.x, batch.y]);
    state.steps += 1;
    state.flops += flops;
    if (checkpoint(state)) record();
    if (state.steps % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  if (state.curve[state.curve.length - 1].step !== state.steps) record();
  return state;
}

/**
 * Where a curve first reaches `target` (val_loss <= target), linearly interpolated between the
 * checkpoint before and the first one at or below the target, in `key` ('step' or 'flops').
 * null when it never does.
 */
export function firstReach(curve, target, key) {
  for (let i = 0; i < curve.length; i++) {
    if (curve[i].val_loss <= target) {
      if (i === 0) return curve[0][key];
      const a = curve[i - 1];
      const b = curve[i];
      return a[key] + ((a.val_loss - target) / (a.val_loss - b.val_loss)) * (b[key] - a[key]);
    }
  }
  return null;
}

export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Sample standard deviation (n - 1); 0 for one value. */
export const std = (xs) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
export const spread = (xs) => ({ mean: mean(xs), std: std(xs), min: Math.min(...xs), max: Math.max(...xs), values: xs });

/**
 * Runs `jobs` (plain JSON values) in child processes of `script`, at most `concurrency` at a
 * time; each child gets its job in env GROW_JOB and sends back one message (its result).
 */
export async function runJobs(script, jobs, concurrency) {
  const results = new Array(jobs.length);
  // GROW_CACHE=<dir>: each finished job's result is kept there (one file per job) and reused, so
  // a run cut short can be resumed, or summarised over the jobs that finished (SEEDS, ARMS).
  const cache = process.env.GROW_CACHE;
  const cached = (job) => cache && join(cache, `${basename(script, '.mjs')}-${Object.entries(job).map(([k, v]) => `${k}=${v}`).join(',')}.json`);
  let nextJob = 0;
  const worker = async () => {
    while (nextJob < jobs.length) {
      const i = nextJob++;
      const file = cached(jobs[i]);
      if (file && existsSync(file)) {
        results[i] = JSON.parse(readFileSync(file, 'utf8'));
        continue;
      }
      // A worker that fails is started again (up to 3 attempts, 30 s apart): on a shared machine
      // a package may be rebuilt while a worker loads it. Runs are deterministic, so a retry gives
      // the same result.
      for (let attempt = 1; ; attempt++) {
        try {
          results[i] = await new Promise((resolve, reject) => {
            const child = fork(script, process.argv.slice(2), { env: { ...process.env, GROW_JOB: JSON.stringify(jobs[i]) } });
            let got;
            child.on('message', (m) => (got = m));
            child.on('exit', (code) => (code === 0 && got ? resolve(got) : reject(new Error(`job ${JSON.stringify(jobs[i])}: worker exited with code ${code}`))));
          });
          break;
        } catch (error) {
          if (attempt >= 3) throw error;
          console.error(`${error.message}; attempt ${attempt + 1} of 3 in 30 s`);
          await new Promise((resolve) => setTimeout(resolve, 30_000));
        }
      }
      if (file) {
        mkdirSync(cache, { recursive: true });
        writeFileSync(file, JSON.stringify(results[i]));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  return results;
}

/** In a worker: the job, or null in the parent. */
export const currentJob = () => (process.env.GROW_JOB ? JSON.parse(process.env.GROW_JOB) : null);

/** Sends a worker's result to the parent and exits. */
export async function finishJob(result) {
  await new Promise((resolve) => process.send(result, resolve));
  process.exit(0);
}

export { Model };
