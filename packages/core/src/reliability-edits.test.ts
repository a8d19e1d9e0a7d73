// Regression tests for the reliability defects of issue 17 (part 1): nested and async edits and
// exact resume of every optimizer. Each test failed on the code before its fix. Part 2:
// reliability-training.test.ts.
import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from './tf';
import { useCpu } from './test-setup';
import { Model } from './model';
import { trainStep, computeGradients, disposeGradients, objectiveStep } from './train/gradients';
import { adam, sgd, cosineDecay, type Optimizer } from './train/optimizers';
import { softmaxCrossEntropy } from './train/losses';
import { saveToBuffer, loadFromBuffer } from './io/model-io';
import { small, withDropout, batch, bytesOf, sameBytes } from './reliability.test-util';

beforeAll(useCpu);

describe('nested edits', () => {
  it('refuses model.edit inside an edit callback with a typed error and leaves the model exactly as it was', () => {
    const model = Model.create(small(), { seed: 1 });
    const x = tf.randomNormal([4, 6], 0, 1, 'float32', 3);
    const before = bytesOf(model);
    const live = tf.memory().numTensors;
    expect(() =>
      model.edit((tx) => {
        tx.removeUnits('fc1', [0]);
        model.edit((inner) => inner.removeUnits('fc1', [1]));
      }),
    ).toThrow(expect.objectContaining({ code: 'EDIT_IN_PROGRESS' }));
    expect(sameBytes(bytesOf(model), before)).toBe(true);
    expect(tf.memory().numTensors).toBe(live);
    expect(model.journal).toHaveLength(0);
    const y = model.apply(x); // still runs
    expect(y.shape).toEqual([4, 3]);
    y.dispose();

    // An outer callback that catches the refusal commits only its own change.
    model.edit((tx) => {
      expect(() => model.edit((inner) => inner.removeUnits('fc1', [1]))).toThrow(expect.objectContaining({ code: 'EDIT_IN_PROGRESS' }));
      tx.removeUnits('fc1', [0]);
    });
    expect(model.group('fc1').size).toBe(7);
    expect(model.journal).toHaveLength(1);
    model.dispose();
    x.dispose();
  });

  it('refuses training, optimizer resets and dispose inside an edit callback', () => {
    const model = Model.create(small(), { seed: 2 });
    const data = batch(5);
    trainStep(model, [data.x], data.y, softmaxCrossEntropy, adam());
    const before = bytesOf(model);
    const live = tf.memory().numTensors;
    const calls: [string, () => unknown][] = [
      ['trainStep', () => trainStep(model, [data.x], data.y, softmaxCrossEntropy, adam())],
      ['resetOptimizerState', () => model.resetOptimizerState()],
      ['dispose', () => model.dispose()],
    ];
    for (const [name, call] of calls) {
      expect(() => model.edit(() => void call()), name).toThrow(expect.objectContaining({ code: 'EDIT_IN_PROGRESS' }));
      expect(sameBytes(bytesOf(model), before), name).toBe(true);
      expect(tf.memory().numTensors, name).toBe(live);
    }
    model.dispose();
    tf.dispose([data.x, data.y]);
  });
});

describe('async edit callbacks', () => {
  async function unhandledDuring(body: () => void): Promise<unknown[]> {
    const seen: unknown[] = [];
    const listener = (reason: unknown): void => void seen.push(reason);
    process.on('unhandledRejection', listener);
    try {
      body();
      // Let every continuation of the callback run, then give Node time to report rejections.
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.off('unhandledRejection', listener);
    }
    return seen;
  }

  it('refuses an async callback before running it: nothing changes, nothing rejects later', async () => {
    const model = Model.create(small(), { seed: 3 });
    const before = bytesOf(model);
    let ran = false;
    const unhandled = await unhandledDuring(() => {
      expect(() =>
        model.edit(async (tx) => {
          ran = true;
          await null;
          tx.removeUnits('fc1', [0]);
        }),
      ).toThrow(expect.objectContaining({ code: 'INVALID_EDIT' }));
    });
    expect(ran).toBe(false);
    expect(unhandled).toEqual([]);
    expect(sameBytes(bytesOf(model), before)).toBe(true);
    model.dispose();
  });

  it('refuses a callback that returns a promise: its later failure is not an unhandled rejection', async () => {
    const model = Model.create(small(), { seed: 4 });
    const before = bytesOf(model);
    const live = tf.memory().numTensors;
    const unhandled = await unhandledDuring(() => {
      expect(() => model.edit((tx) => Promise.resolve().then(() => void tx.removeUnits('fc1', [0])) as never)).toThrow(
        expect.objectContaining({ code: 'INVALID_EDIT' }),
      );
    });
    expect(unhandled).toEqual([]);
    expect(sameBytes(bytesOf(model), before)).toBe(true);
    expect(tf.memory().numTensors).toBe(live);
    model.dispose();
  });
});

describe('exact resume', () => {
  const optimizers: [string, () => Optimizer][] = [
    ['sgd', () => sgd({ learningRate: 0.05 })],
    ['sgd + momentum', () => sgd({ learningRate: 0.05, momentum: 0.9 })],
    ['adam', () => adam({ learningRate: 0.01 })],
    ['adamw + cosine schedule', () => adam({ learningRate: cosineDecay({ initial: 0.02, steps: 12, warmup: 2 }), weightDecay: 0.01 })],
    ['sgd + momentum + cosine schedule', () => sgd({ learningRate: cosineDecay({ initial: 0.1, steps: 12 }), momentum: 0.9 })],
  ];
  for (const [name, make] of optimizers) {
    it(`${name}: 5 steps, save with optimizer state, load, 5 more steps: bit-identical to 10 uninterrupted steps`, () => {
      const batches = Array.from({ length: 10 }, (_, i) => batch(100 + i));
      const run = (model: Model, optimizer: Optimizer, from: number, to: number): void => {
        for (let i = from; i < to; i++) trainStep(model, [batches[i].x], batches[i].y, softmaxCrossEntropy, optimizer);
      };
      const straight = Model.create(withDropout(), { seed: 7 });
      run(straight, make(), 0, 10);

      const first = Model.create(withDropout(), { seed: 7 });
      run(first, make(), 0, 5);
      const resumed = loadFromBuffer(saveToBuffer(first, { includeOptimizerState: true }));
      first.dispose();
      expect(resumed.optimizerStep).toBe(5);
      run(resumed, make(), 5, 10); // a fresh optimizer object: all state comes from the file

      expect(resumed.optimizerStep).toBe(10);
      expect(sameBytes(bytesOf(resumed), bytesOf(straight))).toBe(true);
      for (const key of straight.paramKeys()) {
        expect(Array.from(resumed.param(key).value.dataSync()), key).toEqual(Array.from(straight.param(key).value.dataSync()));
      }
      straight.dispose();
      resumed.dispose();
      for (const b of batches) tf.dispose([b.x, b.y]);
    });
  }

  it('two optimizers on disjoint parameters (DARTS-style) count their own updates and resume bit-identically', () => {
    const batches = Array.from({ length: 8 }, (_, i) => batch(200 + i));
    const first = ['fc1/kernel', 'fc1/bias'];
    const second = ['fc2/kernel', 'fc2/bias'];
    const schedule = cosineDecay({ initial: 0.05, steps: 8 });
    const run = (model: Model, from: number, to: number): void => {
      const a = adam({ learningRate: schedule });
      const b = sgd({ learningRate: schedule, momentum: 0.9 });
      for (let i = from; i < to; i++) {
        const { x, y } = batches[i];
        objectiveStep(model, a, (pass) => softmaxCrossEntropy(pass.run(x)[0], y), { params: first });
        if (i % 2 === 0) objectiveStep(model, b, (pass) => softmaxCrossEntropy(pass.run(x)[0], y), { params: second });
      }
    };
    const straight = Model.create(withDropout(), { seed: 11 });
    run(straight, 0, 8);
    expect(straight.optimizerStepOf('fc1/kernel')).toBe(8);
    expect(straight.optimizerStepOf('fc2/kernel')).toBe(4);
    const half = Model.create(withDropout(), { seed: 11 });
    run(half, 0, 4);
    const resumed = loadFromBuffer(saveToBuffer(half, { includeOptimizerState: true }));
    half.dispose();
    run(resumed, 4, 8);
    expect(sameBytes(bytesOf(resumed), bytesOf(straight))).toBe(true);
    straight.dispose();
    resumed.dispose();
    for (const b of batches) tf.dispose([b.x, b.y]);
  });

  it('resetOptimizerState restarts the step count; a failed update changes nothing', () => {
    const model = Model.create(small(), { seed: 8 });
    const data = batch(9);
    trainStep(model, [data.x], data.y, softmaxCrossEntropy, adam());
    expect(model.optimizerStep).toBe(1);
    const before = bytesOf(model);
    const live = tf.memory().numTensors;
    // A schedule that fails at the next update: refused before any change.
    const bad = adam({ learningRate: () => Number.NaN });
    expect(() => trainStep(model, [data.x], data.y, softmaxCrossEntropy, bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    // A gradient map with a key the model lacks: refused, nothing half-applied.
    const g = computeGradients(model, [data.x], data.y, softmaxCrossEntropy);
    g.grads.set('nope/kernel', tf.zeros([1]));
    expect(() => adam().step(model, g.grads)).toThrow(expect.objectContaining({ code: 'UNKNOWN_PARAM' }));
    disposeGradients(g);
    expect(tf.memory().numTensors).toBe(live);
    expect(sameBytes(bytesOf(model), before)).toBe(true);
    model.resetOptimizerState();
    expect(model.optimizerStep).toBe(0);
    model.dispose();
    tf.dispose([data.x, data.y]);
  });
});
