import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, createOpRegistry, computeGradients, softmaxCrossEntropy, sgd, isRsError, type GraphDef, type Tensor } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { maxAbsDiff } from '@rs/core/testing';
import { registerNasOps, dartsSupernet, darts, discretize, architectureWeights, nb201Space, NB201_OPS } from './index';

beforeAll(async () => {
  await install();
});

const registry = registerNasOps(createOpRegistry());
const small = { inputShape: [8, 8, 1] as [number, number, number], channels: 3, stemStride: 1, classes: 3 };

function data(seed: number, count = 8): { x: Tensor; y: Tensor } {
  return { x: tf.randomNormal([count, 8, 8, 1], 0, 1, 'float32', seed), y: tf.tensor1d(Array.from({ length: count }, (_, i) => (i + seed) % 3), 'int32') };
}

function clone(model: Model): Model {
  const params: Record<string, Tensor> = {};
  for (const k of model.paramKeys()) params[k] = model.param(k).value;
  return Model.create(model.graph, { registry, params, seed: 0 });
}

describe('DARTS', () => {
  it('builds a supernet whose every edge mixes the five candidates', () => {
    const model = Model.create(dartsSupernet(small), { registry, seed: 1 });
    const weights = architectureWeights(model);
    expect(Object.keys(weights)).toHaveLength(6);
    for (const w of Object.values(weights)) expect(w).toHaveLength(5);
    const x = data(1).x;
    const y = model.apply(x);
    expect(y.shape).toEqual([8, 3]);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('first-order search moves alpha, trains, and leaks no tensors', () => {
    const model = Model.create(dartsSupernet(small), { registry, seed: 1 });
    const train = data(1, 32);
    const validation = data(2, 32);
    const before = JSON.stringify(architectureWeights(model));
    const live = tf.memory().numTensors;
    const result = darts(model, { train, validation, steps: 4, batchSize: 8 });
    darts(model, { train, validation, steps: 2, batchSize: 8, order: 'second' });
    // Adam state (2 slots per trained parameter) is the only growth.
    const slots = 2 * model.paramKeys().filter((k) => model.param(k).trainable && model.param(k).role !== 'state').length;
    expect(tf.memory().numTensors).toBe(live + slots);
    expect(JSON.stringify(result.weights)).not.toBe(before);
    expect(result.trainLosses.every(Number.isFinite)).toBe(true);
    tf.dispose([train.x, train.y, validation.x, validation.y]);
    model.dispose();
  });

  it('a seed draws the batch order: the same seed repeats the search, another seed changes it; bad seeds are refused; no leak', () => {
    const train = data(3, 20);
    const validation = data(4, 20);
    const search = (seed: number | undefined): Record<string, number[]> => {
      const model = Model.create(dartsSupernet(small), { registry, seed: 1 });
      const live = tf.memory().numTensors;
      darts(model, { train, validation, steps: 3, batchSize: 8, seed, weightOptimizer: sgd({ learningRate: 0.05 }), archOptimizer: sgd({ learningRate: 0.5 }) });
      expect(tf.memory().numTensors).toBe(live);
      const weights = architectureWeights(model);
      model.dispose();
      return weights;
    };
    const a = search(7);
    expect(search(7)).toEqual(a);
    expect(JSON.stringify(search(8))).not.toBe(JSON.stringify(a));
    expect(JSON.stringify(search(undefined))).not.toBe(JSON.stringify(a));
    const model = Model.create(dartsSupernet(small), { registry, seed: 1 });
    const before = JSON.stringify(architectureWeights(model));
    let error: unknown;
    try {
      darts(model, { train, validation, steps: 2, batchSize: 8, seed: 1.5 });
    } catch (e) {
      error = e;
    }
    expect(isRsError(error) && error.code).toBe('INVALID_ARGUMENT');
    expect(JSON.stringify(architectureWeights(model))).toBe(before);
    model.dispose();
    tf.dispose([train.x, train.y, validation.x, validation.y]);
  });

  it('second-order alpha gradients match finite differences of L_val(w - xi grad_w L_train(w, alpha), alpha)', () => {
    // A smooth model (tanh, sigmoid, dense): with ReLU and batch statistics the float32 finite
    // differences are too ill-conditioned to check the formula against.
    const graph: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 8, 8, 1], dtype: 'float32' }],
      nodes: [
        { id: 'f', op: 'flatten', inputs: ['x'], attrs: {} },
        { id: 'h', op: 'dense', inputs: ['f'], attrs: { units: 6 } },
        { id: 'a', op: 'dense', inputs: ['h'], attrs: { units: 6 } },
        { id: 'at', op: 'tanh', inputs: ['a'], attrs: {} },
        { id: 'b', op: 'dense', inputs: ['h'], attrs: { units: 6 } },
        { id: 'bt', op: 'sigmoid', inputs: ['b'], attrs: {} },
        { id: 'edge', op: 'nas.mixed', inputs: ['h', 'at', 'bt'], attrs: { candidates: ['skip_connect', 'nor_conv_1x1', 'nor_conv_3x3'] } },
        { id: 'o', op: 'dense', inputs: ['edge'], attrs: { units: 3 } },
      ],
      outputs: ['o'],
    };
    const base = Model.create(graph, { registry, seed: 3, params: { 'edge/alpha': tf.tensor1d([0.3, -0.2, 0.1]) } });
    const train = data(5);
    const validation = data(6);
    const xi = 0.05;
    const alphaKey = 'edge/alpha';
    const weightKeys = base.paramKeys().filter((k) => k !== alphaKey);
    // The unrolled objective, computed directly on a copy.
    const objective = (alpha: number[]): number => {
      const m = clone(base);
      m.setParamValues(new Map([[alphaKey, tf.tensor1d(alpha)]]));
      const g = computeGradients(m, [train.x], train.y, softmaxCrossEntropy, { params: weightKeys });
      m.setParamValues(new Map(weightKeys.map((k) => [k, tf.tidy(() => tf.sub(m.param(k).value, tf.mul(g.grads.get(k) as Tensor, xi)))])));
      for (const t of [...g.grads.values(), ...g.state.values()]) t.dispose();
      const v = computeGradients(m, [validation.x], validation.y, softmaxCrossEntropy, { params: [alphaKey] });
      for (const t of [...v.grads.values(), ...v.state.values()]) t.dispose();
      m.dispose();
      return v.loss;
    };
    const alpha0 = Array.from(base.param(alphaKey).value.dataSync());
    const h = 1e-2;
    const numeric = alpha0.map((_, i) => {
      const plus = [...alpha0];
      const minus = [...alpha0];
      plus[i] += h;
      minus[i] -= h;
      return (objective(plus) - objective(minus)) / (2 * h);
    });
    // darts() with SGD(lr = 1) on alpha: alpha_after = alpha_before - gradient.
    const stepped = (order: 'first' | 'second'): number[] => {
      const model = clone(base);
      darts(model, { train, validation, steps: 1, batchSize: 8, order, unrolledLearningRate: xi, archOptimizer: sgd({ learningRate: 1 }), weightOptimizer: sgd({ learningRate: 0 }) });
      const after = Array.from(model.param(alphaKey).value.dataSync());
      model.dispose();
      return after.map((a, i) => alpha0[i] - a);
    };
    const second = stepped('second');
    const first = stepped('first');
    const scale = Math.max(...numeric.map(Math.abs));
    expect(scale).toBeGreaterThan(1e-3);
    for (let i = 0; i < numeric.length; i++) expect(Math.abs(second[i] - numeric[i])).toBeLessThan(1e-3 * scale);
    // The first-order gradient ignores the unrolled step, so it misses (the check can fail).
    expect(Math.max(...first.map((g, i) => Math.abs(g - numeric[i])))).toBeGreaterThan(1e-2 * scale);
    tf.dispose([train.x, train.y, validation.x, validation.y]);
    base.dispose();
  });

  it('discretizes by one journaled edit into exactly the cell the space builds', () => {
    // The second and third cells choose skip on edges that read node 1, a single mixed node
    // (e21, e31): the bypass must follow that node's own discretization.
    const targets: Array<[string, number]> = [
      ['|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|skip_connect~2|', 2],
      ['|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|', 2],
      ['|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|', 4],
    ];
    for (const [target, skips] of targets) {
      const model = Model.create(dartsSupernet(small), { registry, seed: 2 });
      const arch = nb201Space().decode(target);
      const edges = ['c0.e10', 'c0.e20', 'c0.e21', 'c0.e30', 'c0.e31', 'c0.e32'];
      model.setParamValues(new Map(edges.map((id, e) => [`${id}/alpha`, tf.tensor1d([0, 1, 2, 3, 4].map((i) => (i === arch[e] ? 1 : 0)))])));
      // 'none' gets a larger alpha on one edge: it is excluded, the runner-up wins.
      const none = tf.tensor1d([0, 1, 2, 3, 4].map((i) => (i === 0 ? 9 : i === arch[0] ? 1 : 0)));
      model.setParamValues(new Map([['c0.e10/alpha', none]]));
      const result = discretize(model);
      expect(result.arch).toBe(target);
      expect(result.skipCount).toBe(skips);
      expect(model.graph.nodes.some((n) => n.op === 'nas.mixed' || n.op === 'nas.zero')).toBe(false);
      expect(model.journal.at(-1)?.technique).toBe('nas');
      const built = nb201Space(small).build!(arch);
      expect(new Set(model.graph.nodes.map((n) => JSON.stringify(n))), target).toEqual(new Set(built.nodes.map((n) => JSON.stringify(n))));
      expect(model.graph.outputs).toEqual(built.outputs);
      const params: Record<string, Tensor> = {};
      for (const k of model.paramKeys()) params[k] = model.param(k).value;
      const twin = Model.create(built, { registry, params });
      const x = data(9).x;
      const [a, b] = [model.apply(x), twin.apply(x)];
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-6);
      tf.dispose([x, a, b]);
      twin.dispose();
      model.dispose();
    }
  });

  it('rejects bad input with typed errors', () => {
    const plain = Model.create(nb201Space(small).build!([3, 3, 3, 3, 3, 3]), { registry });
    const train = data(1);
    const code = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return isRsError(e) ? e.code : String(e);
      }
      return 'no error';
    };
    expect(code(() => darts(plain, { train, validation: train, steps: 1 }))).toBe('INVALID_ARGUMENT');
    const supernet = Model.create(dartsSupernet(small), { registry });
    expect(code(() => darts(supernet, { train, validation: train, steps: 0 }))).toBe('INVALID_BUDGET');
    expect(code(() => dartsSupernet({ candidates: ['sep_conv_5x5'] }))).toBe('INVALID_ARGUMENT');
    expect(code(() => discretize(supernet, { exclude: [...NB201_OPS] }))).toBe('INVALID_ARGUMENT');
    expect(supernet.graph.nodes.filter((n) => n.op === 'nas.mixed')).toHaveLength(6);
    tf.dispose([train.x, train.y]);
    plain.dispose();
    supernet.dispose();
  });
});
