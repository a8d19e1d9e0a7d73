import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '../tf';
import { useCpu, maxAbsDiff } from '../test-setup';
import { Model } from '../model';
import { lenet300100 } from '../models/builders';
import { fit, evaluate } from './fit';
import { trainStep, computeGradients, disposeGradients } from './gradients';
import { adam, sgd, cosineDecay } from './optimizers';
import { softmaxCrossEntropy } from './losses';
import { isRsError } from '../errors';

beforeAll(useCpu);

function blobs(n: number, seed: number): { x: tf.Tensor; y: tf.Tensor } {
  // Two separable Gaussian blobs in 20 dimensions (class = sign of the first coordinate's mean).
  return tf.tidy(() => {
    const y = tf.cast(tf.greater(tf.randomUniform([n], 0, 1, 'float32', seed), 0.5), 'int32');
    const centre = tf.mul(tf.sub(tf.cast(tf.expandDims(y, 1), 'float32'), 0.5), tf.concat([tf.fill([1, 1], 4), tf.zeros([1, 19])], 1));
    const x = tf.add(tf.randomNormal([n, 20], 0, 1, 'float32', seed + 1), centre);
    return { x, y };
  });
}

const small = () => lenet300100({ inputs: 20, hidden: [16, 8], classes: 2 });

describe('training', () => {
  it('learns a separable problem and keeps the live tensor count constant over 200 steps and across edits', async () => {
    const model = Model.create(small(), { seed: 1 });
    const data = blobs(64, 3);
    const optimizer = adam({ learningRate: 1e-2 });
    // Warm up: optimizer slots are created on the first step.
    trainStep(model, [data.x], data.y, softmaxCrossEntropy, optimizer);
    const live = tf.memory().numTensors;
    const counts: number[] = [];
    await fit(model, data, {
      loss: 'softmaxCrossEntropy',
      optimizer,
      epochs: 25,
      batchSize: 8,
      callbacks: [{ onStepEnd: () => void counts.push(tf.memory().numTensors) }],
    });
    expect(counts).toHaveLength(200);
    expect(new Set(counts)).toEqual(new Set([live]));
    // Edits: same number of live tensors after a remove + insert that restores the sizes.
    model.edit((tx) => tx.removeUnits('fc1', [0, 3]));
    model.edit((tx) => tx.insertUnits('fc1', 2));
    expect(tf.memory().numTensors).toBe(live);
    const { accuracy } = evaluate(model, data);
    expect(accuracy).toBeGreaterThan(0.9);
    model.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('optimizer state follows edits: removed units lose their moments, inserted units start at zero', async () => {
    const model = Model.create(small(), { seed: 2 });
    const data = blobs(32, 5);
    await fit(model, data, { loss: 'softmaxCrossEntropy', optimizer: adam(), epochs: 1, batchSize: 8 });
    const m = () => model.internalState.slots.get('fc2/kernel')?.get('m') as tf.Tensor;
    const before = m().arraySync() as number[][];
    model.edit((tx) => tx.removeUnits('fc1', [2]));
    const after = m().arraySync() as number[][];
    expect(after).toHaveLength(15);
    expect(after).toEqual(before.filter((_, i) => i !== 2));
    model.edit((tx) => tx.insertUnits('fc1', 1, { at: 0 }));
    const inserted = m().arraySync() as number[][];
    expect(inserted[0]).toEqual(new Array(8).fill(0));
    expect(inserted.slice(1)).toEqual(after);
    // And training continues on the edited model.
    await fit(model, data, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 8 });
    model.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('learning-rate schedules: cosineDecay values, and sgd applies the scheduled rate of each update', () => {
    const schedule = cosineDecay({ initial: 0.1, steps: 5, final: 0.02 });
    const values = [1, 2, 3, 4, 5, 6].map(schedule);
    const expected = [0, 1, 2, 3].map((i) => 0.02 + 0.04 * (1 + Math.cos((Math.PI * i) / 4)));
    values.slice(0, 4).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
    expect(values.slice(4)).toEqual([0.02, 0.02]);
    const warm = cosineDecay({ initial: 1, steps: 10, warmup: 4 });
    expect([1, 2, 4].map(warm)).toEqual([0.25, 0.5, 1]);
    expect(warm(5)).toBeCloseTo(1, 12);
    expect(() => cosineDecay({ initial: 1, steps: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => cosineDecay({ initial: 1, steps: 4, warmup: 4 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    // With plain SGD, each update moves the weights by exactly rate(step) * gradient.
    const model = Model.create(small(), { seed: 4 });
    const data = blobs(16, 9);
    const rates = [0.5, 0.25, 0.125];
    const optimizer = sgd({ learningRate: (step) => rates[step - 1] });
    for (const rate of rates) {
      const g = computeGradients(model, [data.x], data.y, softmaxCrossEntropy);
      const before = tf.clone(model.param('fc1/kernel').value);
      const grad = g.grads.get('fc1/kernel') as tf.Tensor;
      const expectedNext = tf.tidy(() => tf.sub(before, tf.mul(grad, rate)));
      optimizer.step(model, g.grads);
      expect(maxAbsDiff(model.param('fc1/kernel').value, expectedNext)).toBeLessThan(1e-6);
      disposeGradients(g);
      tf.dispose([before, expectedNext]);
    }
    // A schedule that returns a bad rate is a typed error and changes nothing.
    const bad = adam({ learningRate: () => Number.NaN });
    const g = computeGradients(model, [data.x], data.y, softmaxCrossEntropy);
    const kernel = Array.from(model.param('fc1/kernel').value.dataSync());
    expect(() => bad.step(model, g.grads)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(Array.from(model.param('fc1/kernel').value.dataSync())).toEqual(kernel);
    expect(bad.config().learningRate).toBe('schedule');
    disposeGradients(g);
    model.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('masks are applied in forward and masked weights stay zero through training', async () => {
    const model = Model.create(small(), { seed: 3 });
    const data = blobs(32, 7);
    const mask = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([20, 16], 0, 1, 'float32', 9), 0.5), 'float32'));
    model.edit((tx) => tx.setMask('fc1/kernel', mask), { technique: 'test', reason: 'half sparsity' });
    await fit(model, data, { loss: 'softmaxCrossEntropy', optimizer: sgd({ learningRate: 0.1, momentum: 0.9 }), epochs: 2, batchSize: 8 });
    const w = model.param('fc1/kernel').value;
    const leaked = tf.tidy(() => tf.sum(tf.abs(tf.mul(w, tf.sub(1, mask)))).dataSync()[0]);
    expect(leaked).toBe(0);
    expect(model.counts().nonzeroParams).toBeLessThan(model.counts().params);
    model.dispose();
    mask.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('same seed, same backend: identical weights after training', async () => {
    const run = async (): Promise<number[]> => {
      const model = Model.create(small(), { seed: 4 });
      const data = blobs(32, 11);
      await fit(model, data, { loss: 'softmaxCrossEntropy', epochs: 2, batchSize: 8, seed: 9 });
      const w = Array.from(model.param('fc2/kernel').value.dataSync());
      model.dispose();
      tf.dispose([data.x, data.y]);
      return w;
    };
    expect(await run()).toEqual(await run());
  });

  it('callbacks may edit the model between steps', async () => {
    const model = Model.create(small(), { seed: 5 });
    const data = blobs(32, 13);
    const sizes: number[] = [];
    await fit(model, data, {
      loss: 'softmaxCrossEntropy',
      epochs: 2,
      batchSize: 8,
      callbacks: [
        {
          onStepEnd: (info) => {
            if (info.step % 2 === 0) info.model.edit((tx) => tx.insertUnits('fc1', 1), { technique: 'test', reason: `step ${info.step}` });
            sizes.push(info.model.group('fc1').size);
          },
        },
      ],
    });
    expect(sizes[sizes.length - 1]).toBe(16 + 4);
    expect(model.journal).toHaveLength(4);
    model.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('taps record activations and gradients of named nodes', () => {
    const model = Model.create(small(), { seed: 6 });
    const x = tf.randomNormal([4, 20], 0, 1, 'float32', 1);
    const run = model.run(x, { taps: { activations: ['relu1'] } });
    expect(run.activations.get('relu1')?.shape).toEqual([4, 16]);
    expect(tf.min(run.activations.get('relu1') as tf.Tensor).dataSync()[0]).toBeGreaterThanOrEqual(0);
    for (const t of [...run.outputs, ...run.activations.values()]) t.dispose();
    x.dispose();
    model.dispose();
  });

  it('rejects bad training input with typed errors', async () => {
    const model = Model.create(small(), { seed: 7 });
    const x = tf.zeros([4, 20]);
    const y = tf.zeros([3], 'int32');
    await expect(fit(model, { x, y }, { loss: 'softmaxCrossEntropy' })).rejects.toSatisfy((e: unknown) => isRsError(e, 'DATA_MISMATCH'));
    const bad = tf.zeros([4, 21]);
    expect(() => model.apply(bad)).toThrow(/SHAPE_MISMATCH.*\[\?, 20\].*\[4, 21\]/);
    tf.dispose([x, y, bad]);
    model.dispose();
  });

  it('gradient taps equal dLoss/dActivation (sum of logits: all ones)', () => {
    const model = Model.create(small(), { seed: 8 });
    const x = tf.randomNormal([3, 20], 0, 1, 'float32', 2);
    const y = tf.zeros([3, 2]);
    const sumLoss = (prediction: tf.Tensor) => tf.sum(prediction);
    const g = computeGradients(model, [x], y, sumLoss, { taps: { gradients: ['fc3'], activations: ['fc3'] } });
    const tap = g.activationGrads.get('fc3') as tf.Tensor;
    const ones = tf.onesLike(tap);
    expect(maxAbsDiff(tap, ones)).toBe(0);
    expect(g.grads.get('fc3/bias')?.arraySync()).toEqual([3, 3]);
    disposeGradients(g);
    tf.dispose([x, y, ones]);
    model.dispose();
  });
});
