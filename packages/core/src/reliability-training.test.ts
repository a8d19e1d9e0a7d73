// Regression tests for the reliability defects of issue 17 (part 2): refused bad training data and
// non-finite losses, error paths that leak no tensor, and smaller input checks. Each test failed on
// the code before its fix. Part 1: reliability-edits.test.ts.
import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from './tf';
import { useCpu } from './test-setup';
import { Model } from './model';
import type { GraphDef } from './ir/types';
import { fit, evaluate } from './train/fit';
import { trainStep, computeGradients, disposeGradients } from './train/gradients';
import { createOpRegistry } from './ops/registry';
import { elementwiseInfer } from './ops/elementwise';
import type { OpSchema } from './ops/schema';
import { adam, sgd } from './train/optimizers';
import { mse, softmaxCrossEntropy, type LossFn } from './train/losses';
import { saveToBuffer, loadFromBuffer, nonFiniteTensors } from './io/model-io';
import { leakOnThrow } from './testing';
import { small, batch, bytesOf, sameBytes } from './reliability.test-util';

beforeAll(useCpu);

describe('bad training data and non-finite losses', () => {
  it('refuses NaN inputs, out-of-range class ids and targets of the wrong width before the first step', async () => {
    const model = Model.create(small(), { seed: 10 });
    const before = bytesOf(model);
    const good = batch(11, 40);
    const nan = tf.tidy(() => tf.where(tf.less(tf.randomUniform([40, 6], 0, 1, 'float32', 12), 0.1), tf.fill([40, 6], Number.NaN), good.x));
    const inf = tf.tidy(() => tf.concat([tf.slice(good.x, 0, 39), tf.fill([1, 6], Number.POSITIVE_INFINITY)]));
    const targets = {
      three: tf.fill([40], 3, 'int32'),
      minusOne: tf.fill([40], -1, 'int32'),
      width4: tf.cast(tf.oneHot(tf.fill([40], 1, 'int32') as tf.Tensor1D, 4), 'float32'),
      width2: tf.zeros([40, 2]),
      nan: tf.fill([40, 3], Number.NaN),
    };
    const cases: [string, () => Promise<unknown>, string][] = [
      ['10% NaN in x', () => fit(model, { x: nan, y: good.y }, { loss: 'softmaxCrossEntropy' }), 'NON_FINITE'],
      ['Infinity in the last row of x', () => fit(model, { x: inf, y: good.y }, { loss: 'softmaxCrossEntropy' }), 'NON_FINITE'],
      ['NaN in the validation data', () => fit(model, good, { loss: 'softmaxCrossEntropy', validation: { x: nan, y: good.y } }), 'NON_FINITE'],
      ['class id 3 with 3 outputs', () => fit(model, { x: good.x, y: targets.three }, { loss: 'softmaxCrossEntropy' }), 'DATA_MISMATCH'],
      ['class id -1', () => fit(model, { x: good.x, y: targets.minusOne }, { loss: 'softmaxCrossEntropy' }), 'DATA_MISMATCH'],
      ['one-hot targets of width 4 for 3 outputs', () => fit(model, { x: good.x, y: targets.width4 }, { loss: 'softmaxCrossEntropy' }), 'DATA_MISMATCH'],
      ['mse targets of width 2 for 3 outputs', () => fit(model, { x: good.x, y: targets.width2 }, { loss: 'mse' }), 'DATA_MISMATCH'],
      ['NaN in mse targets', () => fit(model, { x: good.x, y: targets.nan }, { loss: 'mse' }), 'NON_FINITE'],
      ['maxSteps -1', () => fit(model, good, { loss: 'softmaxCrossEntropy', maxSteps: -1 }), 'INVALID_ARGUMENT'],
      ['maxSteps 0', () => fit(model, good, { loss: 'softmaxCrossEntropy', maxSteps: 0 }), 'INVALID_ARGUMENT'],
    ];
    for (const [name, call, code] of cases) {
      const { error, leaked } = await leakOnThrow(call);
      expect(error, name).toMatchObject({ code });
      expect(leaked, name).toBe(0);
      expect(sameBytes(bytesOf(model), before), name).toBe(true);
    }
    tf.dispose(Object.values(targets));
    expect(model.optimizerStep).toBe(0);
    model.dispose();
    tf.dispose([good.x, good.y, nan, inf]);
  });

  it('a loss that turns NaN mid-training stops fit with a typed error naming the step; the model stays at its last good state', async () => {
    const model = Model.create(small(), { seed: 13 });
    const data = batch(14, 64);
    let calls = 0;
    const poisoned: LossFn = (p, y) => (++calls === 4 ? tf.mul(softmaxCrossEntropy(p, y), Number.NaN) : softmaxCrossEntropy(p, y));
    const snapshots: Uint8Array[] = [];
    const live = tf.memory().numTensors;
    const failure = fit(model, data, { loss: poisoned, optimizer: adam(), batchSize: 16, epochs: 2, callbacks: [{ onStepEnd: () => void snapshots.push(bytesOf(model)) }] });
    await expect(failure).rejects.toMatchObject({ code: 'NON_FINITE', details: expect.objectContaining({ step: 4, epoch: 0, update: 4 }) });
    await expect(failure).rejects.toThrow(/step 4/);
    expect(snapshots).toHaveLength(3);
    expect(sameBytes(bytesOf(model), snapshots[2])).toBe(true);
    expect(model.optimizerStep).toBe(3);
    // Three steps made Adam's slots (m and v for every parameter); nothing else is left behind.
    expect(tf.memory().numTensors - live).toBe(2 * model.paramKeys().length);
    model.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('a diverging run (learning rate 1e6) stops with NON_FINITE instead of finishing with NaN weights', async () => {
    const model = Model.create(small(), { seed: 15 });
    const data = batch(16, 64);
    const y = tf.tidy(() => tf.mul(tf.oneHot(data.y as tf.Tensor1D, 3), 1e3));
    await expect(fit(model, { x: data.x, y }, { loss: 'mse', optimizer: sgd({ learningRate: 1e6 }), epochs: 20, batchSize: 16 })).rejects.toMatchObject({ code: 'NON_FINITE' });
    // The last update applied was finite in its loss; every step it took was refused once the loss was not.
    expect(model.optimizerStep).toBeGreaterThan(0);
    model.dispose();
    tf.dispose([data.x, data.y, y]);
  });
});

describe('error paths leak no tensor', () => {
  it('computeGradients, trainStep and fit whose loss throws leave the live-tensor count unchanged', async () => {
    const model = Model.create(small(), { seed: 17 });
    const data = batch(18, 32);
    const wrongWidth = tf.cast(tf.oneHot(data.y as tf.Tensor1D, 5), 'float32'); // 5 columns for 3 outputs
    const throwing: LossFn = () => {
      throw new Error('custom loss failed');
    };
    const calls: [string, () => unknown][] = [
      ['computeGradients, wrong one-hot width', () => computeGradients(model, [data.x], wrongWidth, softmaxCrossEntropy)],
      ['computeGradients with taps, throwing loss', () => computeGradients(model, [data.x], data.y, throwing, { taps: { activations: ['fc1'], gradients: ['fc2'] } })],
      ['trainStep, wrong one-hot width', () => trainStep(model, [data.x], wrongWidth, softmaxCrossEntropy, adam())],
      ['fit, throwing loss', () => fit(model, data, { loss: throwing })],
      ['fit, custom loss on wrong targets', () => fit(model, { x: data.x, y: wrongWidth }, { loss: (p, y) => mse(p, y) })],
    ];
    const before = bytesOf(model);
    for (let round = 0; round < 3; round++) {
      for (const [name, call] of calls) {
        const { error, leaked } = await leakOnThrow(call);
        expect(leaked, name).toBe(0);
        expect(error, name).toBeInstanceOf(Error);
      }
    }
    expect(sameBytes(bytesOf(model), before)).toBe(true);
    // And gradients still work afterwards (the tape was released, not left dangling).
    const g = computeGradients(model, [data.x], data.y, softmaxCrossEntropy);
    expect(Number.isFinite(g.loss)).toBe(true);
    disposeGradients(g);
    model.dispose();
    tf.dispose([data.x, data.y, wrongWidth]);
  });
});

describe('non-finite weights on load', () => {
  it('loads by default and lists them; requireFinite refuses with IO_CORRUPT naming the tensor', () => {
    const model = Model.create(small(), { seed: 19 });
    model.edit((tx) => {
      const bad = tf.tidy(() => tf.where(tf.equal(tf.range(0, 5), 2), tf.fill([5], Number.NaN), tf.zeros([5])));
      tx.setParam('fc2/bias', bad);
      bad.dispose();
    });
    const bytes = saveToBuffer(model);
    const loaded = loadFromBuffer(bytes);
    expect(nonFiniteTensors(loaded)).toEqual(['fc2/bias']);
    loaded.dispose();
    const live = tf.memory().numTensors;
    expect(() => loadFromBuffer(bytes, { requireFinite: true })).toThrow(expect.objectContaining({ code: 'IO_CORRUPT', details: { tensors: ['fc2/bias'] } }));
    expect(tf.memory().numTensors).toBe(live);
    expect(nonFiniteTensors(model)).toEqual(['fc2/bias']);
    model.dispose();
    const healthy = Model.create(small(), { seed: 20 });
    const copy = loadFromBuffer(saveToBuffer(healthy), { requireFinite: true });
    expect(nonFiniteTensors(copy)).toEqual([]);
    copy.dispose();
    healthy.dispose();
  });
});

describe('graph attributes JSON cannot carry', () => {
  it('refuses NaN and Infinity in attributes instead of silently turning them into defaults', () => {
    const graph = small();
    (graph.nodes[0].attrs as Record<string, unknown>).units = Number.NaN;
    expect(() => Model.create(graph)).toThrow(expect.objectContaining({ code: 'INVALID_ATTRS', details: expect.objectContaining({ path: 'graph.nodes[0].attrs.units' }) }));
    const model = Model.create(small(), { seed: 21 });
    const before = bytesOf(model);
    const live = tf.memory().numTensors;
    expect(() => model.edit((tx) => tx.insertNode({ id: 'extra', op: 'dropout', inputs: ['relu1'], attrs: { rate: Number.POSITIVE_INFINITY } }, { after: 'relu1' }))).toThrow(
      expect.objectContaining({ code: 'INVALID_ATTRS' }),
    );
    expect(() => model.edit((tx) => tx.setMeta('policy', { thresholds: [0.2, Number.NaN] }))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(sameBytes(bytesOf(model), before)).toBe(true);
    expect(tf.memory().numTensors).toBe(live);
    model.dispose();
  });
});

describe('more inputs refused with typed errors (same class of defect, found by probing)', () => {
  it('apply, run, predict and evaluate refuse non-tensors, unknown taps and bad batch sizes without leaking', async () => {
    const model = Model.create(small(), { seed: 22 });
    const data = batch(23, 8);
    const cases: [string, () => unknown, string][] = [
      ['apply(null)', () => model.apply(null as never), 'INVALID_ARGUMENT'],
      ['run with a tap on an unknown node', () => model.run(data.x, { taps: { activations: ['nope'] } }), 'UNKNOWN_NODE'],
      ['computeGradients with a gradient tap on an unknown node', () => computeGradients(model, [data.x], data.y, softmaxCrossEntropy, { taps: { gradients: ['nope'] } }), 'UNKNOWN_NODE'],
      // Both loops advanced by batchSize: 0 never ended.
      ['predict batchSize 0', () => model.predict(data.x, { batchSize: 0 }), 'INVALID_ARGUMENT'],
      ['evaluate batchSize 0', () => evaluate(model, data, { batchSize: 0 }), 'INVALID_ARGUMENT'],
      ['fit with x = undefined', () => fit(model, { x: undefined as never, y: data.y }, { loss: 'softmaxCrossEntropy' }), 'DATA_MISMATCH'],
    ];
    for (const [name, call, code] of cases) {
      const { error, leaked } = await leakOnThrow(call);
      expect(error, name).toMatchObject({ code });
      expect(leaked, name).toBe(0);
    }
    model.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('a forward pass that fails after a batchNorm in training mode releases the new statistics', () => {
    const boom: OpSchema<Record<string, never>> = {
      name: 'boom',
      arity: 1,
      infer: elementwiseInfer,
      forward: () => {
        throw new Error('boom');
      },
      units: 'elementwise',
      flops: () => 0,
    };
    const registry = createOpRegistry().register(boom);
    const graph: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
      nodes: [
        { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 4 } },
        { id: 'bn', op: 'batchNorm', inputs: ['fc1'], attrs: {} },
        { id: 'boom', op: 'boom', inputs: ['bn'], attrs: {} },
      ],
      outputs: ['boom'],
    };
    const model = Model.create(graph, { registry, seed: 24 });
    const data = batch(25, 8);
    const y = tf.zeros([8, 4]);
    const live = tf.memory().numTensors;
    expect(() => computeGradients(model, [data.x], y, mse)).toThrow('boom');
    expect(() => model.apply(data.x, { training: true })).toThrow('boom');
    expect(tf.memory().numTensors).toBe(live);
    model.dispose();
    tf.dispose([data.x, data.y, y]);
  });
});
