import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, fit, adam, sgd, isRsError, lenet300100, lenet5, computeGradients, disposeGradients, softmaxCrossEntropy, type GraphDef } from '@rs/core';
import { maxAbsDiff } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { widen, deepen } from './net2net';
import { growGradMax } from './gradmax';
import { growOnPlateau, checkBudget } from './plateau';

beforeAll(async () => {
  await install();
});

const data = (n: number, d: number, seed: number) =>
  tf.tidy(() => {
    const x = tf.randomNormal([n, d], 0, 1, 'float32', seed);
    const y = tf.reshape(tf.cast(tf.greater(tf.sum(tf.slice(x, [0, 0], [-1, 2]), 1), 0), 'int32'), [n]);
    return { x, y };
  });

describe('Net2Net', () => {
  it('widen preserves the function (dense chain, residual, conv -> flatten -> dense)', () => {
    const residual: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
      nodes: [
        { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 5 } },
        { id: 'ra', op: 'relu', inputs: ['a'], attrs: {} },
        { id: 'b', op: 'dense', inputs: ['ra'], attrs: { units: 5 } },
        { id: 'sum', op: 'add', inputs: ['ra', 'b'], attrs: {} },
        { id: 'out', op: 'dense', inputs: ['sum'], attrs: { units: 2 } },
      ],
      outputs: ['out'],
    };
    const cases: [GraphDef, string, tf.Tensor][] = [
      [lenet300100({ inputs: 8, hidden: [6, 4], classes: 3 }), 'fc1', tf.randomNormal([4, 8], 0, 1, 'float32', 1)],
      [residual, 'a', tf.randomNormal([4, 6], 0, 1, 'float32', 2)],
      [lenet5({ filters: [3, 4], hidden: [8, 6] }), 'conv2', tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 3)],
    ];
    for (const [graph, group, x] of cases) {
      for (const split of ['even', 'random', 'random-weights'] as const) {
        const model = Model.create(graph, { seed: 1 });
        const before = model.apply(x);
        const size = model.group(group).size;
        widen(model, group, 5, { seed: 2, split });
        expect(model.group(group).size).toBe(size + 5);
        expect(maxAbsDiff(before, model.apply(x)), `${group} ${split}`).toBeLessThanOrEqual(1e-5);
        expect(model.journal.at(-1)?.technique).toBe('grow');
        model.dispose();
      }
    }
  });

  it("split 'random-weights': the outgoing rows of a unit and its copies are not proportional", () => {
    const model = Model.create(lenet300100({ inputs: 8, hidden: [6, 4], classes: 3 }), { seed: 1 });
    const { sources } = widen(model, 'fc1', 1, { seed: 3, split: 'random-weights' });
    const kernel = model.param('fc2/kernel').value.arraySync() as number[][];
    const [s] = sources;
    const ratios = kernel[6].map((v, j) => v / kernel[s][j]);
    // Per-unit splits ('random', 'even') give one ratio for the whole row; here they differ.
    expect(Math.max(...ratios) - Math.min(...ratios)).toBeGreaterThan(0.05);
    expect(() => widen(model, 'fc1', 1, { split: 'halves' as 'even' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    model.dispose();
  });

  it('deepen inserts an identity layer (dense and conv) that preserves the function', () => {
    for (const [graph, after, x] of [
      [lenet300100({ inputs: 8, hidden: [6, 4], classes: 3 }), 'relu1', tf.randomNormal([4, 8], 0, 1, 'float32', 4)],
      [lenet5({ filters: [3, 4], hidden: [8, 6] }), 'relu1', tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 5)],
    ] as [GraphDef, string, tf.Tensor][]) {
      const model = Model.create(graph, { seed: 1 });
      const before = model.apply(x);
      const { nodes } = deepen(model, after);
      expect(nodes).toHaveLength(2);
      expect(maxAbsDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);
      model.dispose();
    }
  });
});

describe('GradMax', () => {
  it('preserves the function to 1e-5 and gives the new fan-in a larger gradient than random fan-out of the same norm', () => {
    const { x, y } = data(64, 10, 6);
    // tanh: the new units' pre-activation is 0 and tanh'(0) = 1 (ReLU's gradient at 0 is 0).
    const graph = lenet300100({ inputs: 10, hidden: [6, 5], classes: 2 });
    graph.nodes = graph.nodes.map((n) => (n.op === 'relu' ? { ...n, op: 'tanh' } : n));
    const model = Model.create(graph, { seed: 2 });
    const before = model.apply(x);
    growGradMax(model, 'fc1', 2, { batch: { x, y }, scale: 1 });
    expect(maxAbsDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);
    const gradNorm = (m: Model) => {
      const g = computeGradients(m, [x], y, softmaxCrossEntropy, { training: false });
      const norm = tf.tidy(() => tf.norm(tf.slice(g.grads.get('fc1/kernel') as tf.Tensor, [0, 6], [-1, 2])).dataSync()[0]);
      disposeGradients(g);
      return norm;
    };
    const random = Model.create(graph, { seed: 2 });
    const outgoing = tf.tidy(() => {
      const r = tf.randomNormal([2, 5], 0, 1, 'float32', 9);
      return tf.div(r, tf.norm(r, 'euclidean', 1, true));
    });
    random.edit((tx) => tx.insertUnits('fc1', 2, { incoming: 'zeros', values: { 'fc2/kernel': outgoing } }));
    expect(gradNorm(model)).toBeGreaterThan(gradNorm(random));
    tf.dispose([x, y, before, outgoing]);
    model.dispose();
    random.dispose();
  });
});

describe('Net2Net copies under training', () => {
  it("with the even split a unit and its copies stay identical under SGD; the default (random) split lets them diverge", async () => {
    const { x, y } = data(64, 10, 11);
    const divergence = async (split: 'even' | 'random' | undefined): Promise<number> => {
      const model = Model.create(lenet300100({ inputs: 10, hidden: [4, 3], classes: 2 }), { seed: 5 });
      const { sources } = widen(model, 'fc1', 4, { seed: 2, split });
      await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: sgd({ learningRate: 0.1 }), epochs: 3, batchSize: 16 });
      const kernel = model.param('fc1/kernel').value.arraySync() as number[][];
      const bias = model.param('fc1/bias').value.arraySync() as number[];
      let most = 0;
      sources.forEach((source, i) => {
        for (const row of kernel) most = Math.max(most, Math.abs(row[4 + i] - row[source]));
        most = Math.max(most, Math.abs(bias[4 + i] - bias[source]));
      });
      model.dispose();
      return most;
    };
    expect(await divergence('even')).toBe(0);
    expect(await divergence('random')).toBeGreaterThan(1e-3);
    expect(await divergence(undefined)).toBe(await divergence('random'));
    tf.dispose([x, y]);
  });
});

describe('growth and training', () => {
  it('optimizer state follows growth: new units start with zero moments and training continues', async () => {
    const { x, y } = data(32, 10, 7);
    const model = Model.create(lenet300100({ inputs: 10, hidden: [6, 5], classes: 2 }), { seed: 3 });
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam(), epochs: 2, batchSize: 8 });
    const before = (model.internalState.slots.get('fc2/kernel')?.get('m') as tf.Tensor).arraySync() as number[][];
    widen(model, 'fc1', 3, { seed: 1 });
    const after = (model.internalState.slots.get('fc2/kernel')?.get('m') as tf.Tensor).arraySync() as number[][];
    expect(after).toHaveLength(9);
    expect(after.slice(0, 6)).toEqual(before);
    expect(after.slice(6)).toEqual([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]);
    const live = tf.memory().numTensors;
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 8 });
    expect(tf.memory().numTensors).toBe(live);
    tf.dispose([x, y]);
    model.dispose();
  });

  it("optimizerState 'copy': each copy takes its source unit's moments, on every coupled axis", async () => {
    const { x, y } = data(32, 10, 7);
    const model = Model.create(lenet300100({ inputs: 10, hidden: [6, 5], classes: 2 }), { seed: 3 });
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam(), epochs: 2, batchSize: 8 });
    const slot = (key: string, name: string) => (model.internalState.slots.get(key)?.get(name) as tf.Tensor).arraySync() as number[][];
    const before = { inM: slot('fc1/kernel', 'm'), inV: slot('fc1/kernel', 'v'), bias: model.internalState.slots.get('fc1/bias')?.get('v')?.arraySync() as number[], out: slot('fc2/kernel', 'm') };
    const reference = model.apply(x);
    const live = tf.memory().numTensors;
    const { sources } = widen(model, 'fc1', 3, { seed: 1, split: 'random', optimizerState: 'copy' });
    // The edit replaces parameters and slots one for one: no tensor leaked.
    expect(tf.memory().numTensors).toBe(live);
    // Function preserved, and the slots of the 3 new units are their sources' (columns of the
    // incoming kernel and bias, rows of the outgoing kernel); the old units' slots are unchanged.
    const after = model.apply(x);
    expect(maxAbsDiff(after, reference)).toBeLessThan(1e-5);
    const inM = slot('fc1/kernel', 'm');
    const inV = slot('fc1/kernel', 'v');
    const out = slot('fc2/kernel', 'm');
    const bias = model.internalState.slots.get('fc1/bias')?.get('v')?.arraySync() as number[];
    expect(out).toHaveLength(9);
    expect(out.slice(0, 6)).toEqual(before.out);
    sources.forEach((s, i) => {
      expect(out[6 + i]).toEqual(before.out[s]);
      expect(inM.map((row) => row[6 + i])).toEqual(before.inM.map((row) => row[s]));
      expect(inV.map((row) => row[6 + i])).toEqual(before.inV.map((row) => row[s]));
      expect(bias[6 + i]).toEqual(before.bias[s]);
    });
    expect(inM.map((row) => row.slice(0, 6))).toEqual(before.inM);
    expect(out[6].some((v) => v !== 0)).toBe(true);
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 8 });
    expect(() => widen(model, 'fc1', 1, { optimizerState: 'moments' as never })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(model.group('fc1').size).toBe(9);
    tf.dispose([x, y, reference, after]);
    model.dispose();
  });

  it('grows on plateau within the budget', async () => {
    const { x, y } = data(64, 10, 8);
    const model = Model.create(lenet300100({ inputs: 10, hidden: [2, 2], classes: 2 }), { seed: 4 });
    const grow = growOnPlateau({ groups: ['fc1', 'fc2'], step: 2, patience: 1, minDelta: 10, budget: { units: 6 }, batch: { x, y } });
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 8, batchSize: 16, validation: { x, y }, callbacks: [grow] });
    expect(grow.history.length).toBe(3);
    expect(model.group('fc1').size + model.group('fc2').size).toBe(4 + 6);
    expect(model.journal.filter((e) => e.technique === 'grow')).toHaveLength(3);
    tf.dispose([x, y]);
    model.dispose();
  });

  it("grows every group at a plateau with select 'all', per-group steps, up to maxSize", async () => {
    const { x, y } = data(64, 10, 9);
    const model = Model.create(lenet300100({ inputs: 10, hidden: [2, 1], classes: 2 }), { seed: 6 });
    // minDelta 10: every epoch is a plateau; after a growth the next epoch sets the new best.
    const grow = growOnPlateau({ groups: ['fc1', 'fc2'], step: { fc1: 3, fc2: 2 }, maxSize: { fc1: 8, fc2: 4 }, select: 'all', patience: 1, minDelta: 10, method: 'net2net', budget: { params: 10_000 }, batch: { x, y } });
    const optimizer = adam();
    // One epoch first so that the optimizer's moments exist before tensors are counted.
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer, epochs: 1, batchSize: 16 });
    const live = tf.memory().numTensors;
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer, epochs: 8, batchSize: 16, validation: { x, y }, callbacks: [grow] });
    expect(tf.memory().numTensors).toBe(live);
    // Epoch 0 sets the best loss, epoch 1 is a plateau: growth; epoch 2 sets a new best, epoch 3
    // grows again; then both groups are at their cap. fc1 2 -> 5 -> 8 (cut to the cap), fc2 1 -> 3 -> 4 (cut).
    expect(grow.history.map((h) => h.epoch)).toEqual([1, 1, 3, 3]);
    const sizes = (group: string) => grow.history.filter((h) => h.group === group).map((h) => h.units);
    expect(sizes('fc1')).toEqual([5, 8]);
    expect(sizes('fc2')).toEqual([3, 4]);
    expect([model.group('fc1').size, model.group('fc2').size]).toEqual([8, 4]);
    tf.dispose([x, y]);
    model.dispose();
  });

  it("method 'random' grows fresh units (initializer fan-in, zero fan-out): outputs unchanged at the growth", async () => {
    const { x, y } = data(64, 10, 10);
    const model = Model.create(lenet300100({ inputs: 10, hidden: [3, 2], classes: 2 }), { seed: 7 });
    let checked = 0;
    const grow = growOnPlateau({ groups: ['fc1'], step: 2, patience: 1, minDelta: 10, method: 'random', budget: { units: 2 }, batch: { x, y } });
    // Compare the outputs just before and just after the growth (the callback runs at epoch end).
    let before: tf.Tensor | undefined;
    const probe = {
      onEpochEnd: () => {
        if (grow.history.length === 1 && checked === 0 && before) {
          const after = model.apply(x);
          expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-6);
          after.dispose();
          checked += 1;
        }
        before?.dispose();
        before = model.apply(x);
      },
    };
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 4, batchSize: 16, validation: { x, y }, callbacks: [probe, grow, { onEpochEnd: () => probe.onEpochEnd() }] });
    before?.dispose();
    expect(checked).toBe(1);
    expect(model.group('fc1').size).toBe(5);
    const kernel = model.param('fc1/kernel').value.arraySync() as number[][];
    // The fresh units' fan-in came from the initializer (not zeros, not copies of old units).
    expect(kernel.some((row) => row[3] !== 0)).toBe(true);
    expect(kernel.map((row) => row[3])).not.toEqual(kernel.map((row) => row[0]));
    expect(model.journal.at(-1)).toMatchObject({ technique: 'grow', details: { method: 'random' } });
    tf.dispose([x, y]);
    model.dispose();
  });

  it('rejects bad growth options with typed errors', () => {
    const batch = { x: tf.zeros([1, 10]), y: tf.zeros([1], 'int32') };
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isRsError(e) ? e.code : String(e);
      }
      return 'no error';
    };
    const base = { groups: ['fc1', 'fc2'], budget: { units: 10 }, batch };
    expect(code(() => growOnPlateau({ ...base, step: { fc3: 2 } }))).toBe('INVALID_ARGUMENT');
    expect(code(() => growOnPlateau({ ...base, step: { fc1: 0 } }))).toBe('INVALID_ARGUMENT');
    expect(code(() => growOnPlateau({ ...base, maxSize: { fc1: 1.5 } }))).toBe('INVALID_ARGUMENT');
    expect(code(() => growOnPlateau({ ...base, maxSize: { nope: 4 } }))).toBe('INVALID_ARGUMENT');
    expect(code(() => growOnPlateau({ ...base, select: 'best' as 'all' }))).toBe('INVALID_ARGUMENT');
    expect(code(() => growOnPlateau({ ...base, noise: -1 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => growOnPlateau({ ...base, method: 'copy' as 'random' }))).toBe('INVALID_ARGUMENT');
    expect(code(() => growOnPlateau({ ...base, optimizerState: 'ones' as 'copy' }))).toBe('INVALID_ARGUMENT');
    expect(code(() => growOnPlateau({ ...base, step: { fc1: 2 }, maxSize: { fc1: 4 }, select: 'all' }))).toBe('no error');
    tf.dispose([batch.x, batch.y]);
  });

  it('bad input gives typed errors and leaves the model unchanged', () => {
    const model = Model.create(lenet300100({ inputs: 10, hidden: [4, 3], classes: 2 }), { seed: 5 });
    const graph = JSON.stringify(model.graph);
    const tensors = tf.memory().numTensors;
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isRsError(e) ? e.code : String(e);
      }
      return 'no error';
    };
    expect(code(() => widen(model, 'fc1', 0))).toBe('INVALID_ARGUMENT');
    expect(code(() => widen(model, 'fc1', -2))).toBe('INVALID_ARGUMENT');
    expect(code(() => widen(model, 'fc3', 2))).toBe('FROZEN_GROUP');
    // relu has no units of its own and no parameters: nothing to grow there.
    expect(code(() => deepen(model, 'nope'))).toBe('UNKNOWN_NODE');
    expect(code(() => widen(model, 'input:x', 1))).toBe('FROZEN_GROUP');
    expect(code(() => checkBudget(model, { params: 70 }, 0, { units: 1, params: 10, flops: 20 }))).toBe('BUDGET_EXCEEDED');
    expect(code(() => checkBudget(model, { units: 4 }, 3, { units: 2, params: 10, flops: 20 }))).toBe('BUDGET_EXCEEDED');
    expect(code(() => growGradMax(model, 'fc1', 0, { batch: { x: tf.zeros([1, 10]), y: tf.zeros([1], 'int32') } }))).toBe('INVALID_ARGUMENT');
    expect(JSON.stringify(model.graph)).toBe(graph);
    expect(model.journal).toHaveLength(0);
    expect(tf.memory().numTensors).toBe(tensors + 2); // the two tensors the last call's arguments created
    model.dispose();
  });
});
