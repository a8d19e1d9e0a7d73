import { describe, it, expect, beforeAll } from 'vitest';
import { Model, createOpRegistry, tf, isRsError, trainStep, adam, computeGradients, disposeGradients, type GraphDef, type Tensor } from '@rs/core';
import { runPlan } from '@rs/core/extend';
import { install } from '@rs/backend-cpu';
import { registerMoe, balanceLoss, route, moeMetrics, type MoeAttrs } from './index';

beforeAll(async () => {
  await install();
});

const registry = registerMoe(createOpRegistry());

/** x -> moe -> (x + moe) -> head: the residual lets dropped tokens pass through. */
function mlp(attrs: Partial<MoeAttrs> = {}, features = 6, classes = 3): GraphDef {
  return {
    inputs: [{ id: 'x', shape: [null, features], dtype: 'float32' }],
    nodes: [
      { id: 'moe', op: 'moe', inputs: ['x'], attrs: { experts: 4, hidden: 8, ...attrs } },
      { id: 'res', op: 'add', inputs: ['x', 'moe'], attrs: {} },
      { id: 'head', op: 'dense', inputs: ['res'], attrs: { units: classes } },
    ],
    outputs: ['head'],
  };
}

const maxDiff = (a: Tensor, b: Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const sumLoss = (out: Tensor, y: Tensor): Tensor => tf.sum(tf.mul(out, y));

function snapshot(model: Model): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const key of model.paramKeys()) out[key] = Array.from(model.param(key).value.dataSync());
  return out;
}

describe('balance loss and capacity', () => {
  it('unscaled balance loss N * sum f_i P_i is 1.0 under perfectly uniform routing, N under collapse', () => {
    // Four tokens, four experts, each token routed to a different expert with a symmetric
    // distribution: f_i = 1/4 and P_i = 1/4, so N * sum f_i P_i = 4 * 4 * (1/16) = 1.
    const p = [
      [0.7, 0.1, 0.1, 0.1],
      [0.1, 0.7, 0.1, 0.1],
      [0.1, 0.1, 0.7, 0.1],
      [0.1, 0.1, 0.1, 0.7],
    ];
    const probs = tf.tensor2d(p);
    const r = route(probs.dataSync(), 4, 4, { routing: 'switch', k: 1, capacityFactor: 1, dropless: false });
    expect(Array.from(r.firstChoice)).toEqual([1, 1, 1, 1]);
    expect(balanceLoss(probs, r.firstChoice).dataSync()[0]).toBeCloseTo(1.0, 6);
    // Everything to expert 0 with probability 1: N * 1 * 1 = N (the maximum; Fedus 2021 eq. 4).
    const collapsed = tf.tensor2d([[1, 0, 0, 0], [1, 0, 0, 0]]);
    expect(balanceLoss(collapsed, [2, 0, 0, 0]).dataSync()[0]).toBeCloseTo(4, 6);
    // And through the op: uniform router (zero weights) on tokens spread evenly gives 1.0.
    const model = Model.create(mlp({ experts: 4, balanceCoef: 0.01 }, 4), { registry, seed: 1, params: { 'moe/router': tf.mul(tf.eye(4), 5) } });
    const x = tf.tensor2d([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
    const run = model.run(x, { training: true });
    expect(run.metrics.get('moe/balance_unscaled')?.dataSync()[0]).toBeCloseTo(1.0, 5);
    expect(run.losses.get('moe/balance')?.dataSync()[0]).toBeCloseTo(0.01, 6);
    model.dispose();
  });

  it('drops fewer tokens as the capacity factor grows 1.0 -> 1.25 -> 2.0 on fixed data', () => {
    const x = tf.randomNormal([256, 6], 0, 1, 'float32', 7);
    const rates: number[] = [];
    for (const capacityFactor of [1.0, 1.25, 2.0]) {
      // Same seed: same router weights; a larger router init makes routing uneven, as after training.
      const model = Model.create(mlp({ experts: 8, capacityFactor }), { registry, seed: 3, params: { 'moe/router': tf.randomNormal([6, 8], 0, 1, 'float32', 5) } });
      const run = model.run(x, { training: true });
      rates.push(run.metrics.get('moe/dropped')?.dataSync()[0] as number);
      model.dispose();
    }
    expect(rates[0]).toBeGreaterThan(0);
    expect(rates[1]).toBeLessThan(rates[0]);
    expect(rates[2]).toBeLessThan(rates[1]);
    // Dropless never drops.
    const dropless = Model.create(mlp({ experts: 8, dropless: true }), { registry, seed: 3, params: { 'moe/router': tf.randomNormal([6, 8], 0, 1, 'float32', 5) } });
    expect(dropless.run(x, { training: true }).metrics.get('moe/dropped')?.dataSync()[0]).toBe(0);
    dropless.dispose();
  });

  it('uses the eval capacity factor outside training, and expert choice fills every expert to capacity', () => {
    const x = tf.randomNormal([64, 6], 0, 1, 'float32', 8);
    const router = tf.randomNormal([6, 4], 0, 1, 'float32', 9);
    const model = Model.create(mlp({ capacityFactor: 0.5, evalCapacityFactor: 4 }), { registry, seed: 3, params: { 'moe/router': router } });
    expect(model.run(x, { training: true }).metrics.get('moe/dropped')?.dataSync()[0]).toBeGreaterThan(0.4);
    expect(model.run(x, { training: false }).metrics.get('moe/dropped')?.dataSync()[0]).toBe(0);
    model.dispose();
    const probs = tf.softmax(tf.matMul(x, router)).dataSync();
    const r = route(probs, 64, 4, { routing: 'expertChoice', k: 1, capacityFactor: 2, dropless: false });
    expect(r.capacity).toBe(32);
    expect(Array.from(r.counts)).toEqual([32, 32, 32, 32]);
  });
});

describe('gradients', () => {
  for (const [routing, activation] of [['switch', 'gelu'], ['top2', 'gelu'], ['expertChoice', 'gelu'], ['switch', 'relu']] as const) {
    it(`match central finite differences (${routing}, ${activation}, with balance and z losses)`, () => {
      const model = Model.create(mlp({ routing, activation, experts: 3, hidden: 5, dropless: routing !== 'expertChoice', balanceCoef: 0.5, zCoef: 0.1 }, 4, 2), {
        registry,
        seed: 11,
        params: { 'moe/router': tf.randomNormal([4, 3], 0, 1, 'float32', 12) },
      });
      const x = tf.randomNormal([10, 4], 0, 1, 'float32', 13);
      const y = tf.randomNormal([10, 2], 0, 1, 'float32', 14);
      const g = computeGradients(model, [x], y, sumLoss);
      const total = (key: string, index: number, delta: number): number =>
        tf.tidy(() => {
          const params = model.maskedParams();
          const base = params.get(key) as Tensor;
          const bump = tf.buffer(base.shape, 'float32');
          bump.values[index] = delta;
          params.set(key, tf.add(base, bump.toTensor()));
          const r = runPlan(model.plan, [x], params, { training: true, rng: model.rng });
          let loss = sumLoss(r.outputs[0], y);
          for (const l of r.losses.values()) loss = tf.add(loss, l);
          return loss.dataSync()[0];
        });
      let checked = 0;
      for (const key of ['moe/router', 'moe/routerBias', 'moe/w1', 'moe/b1', 'moe/w2', 'moe/b2']) {
        const grad = g.grads.get(key)?.dataSync() as Float32Array;
        for (const index of [0, 3, 7].filter((i) => i < grad.length)) {
          // relu: a smaller step, so that no pre-activation crosses its kink.
          const eps = activation === 'relu' ? 2e-4 : 1e-2;
          const numeric = (total(key, index, eps) - total(key, index, -eps)) / (2 * eps);
          expect(Math.abs(numeric - grad[index])).toBeLessThan(2e-3 + 2e-2 * Math.abs(numeric));
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(12);
      // The router gets a gradient (through the gates and the auxiliary losses).
      expect(tf.tidy(() => tf.max(tf.abs(g.grads.get('moe/router') as Tensor)).dataSync()[0])).toBeGreaterThan(1e-4);
      disposeGradients(g);
      model.dispose();
    });
  }

  it('computes only routed tokens: an expert that gets no token gets exactly zero gradient', () => {
    // Router sends every token to expert 2 (large bias), dropless.
    const model = Model.create(mlp({ experts: 4, dropless: true }), { registry, seed: 2, params: { 'moe/routerBias': tf.tensor1d([0, 0, 20, 0]) } });
    const x = tf.randomNormal([16, 6], 0, 1, 'float32', 1);
    const y = tf.randomNormal([16, 3], 0, 1, 'float32', 2);
    const g = computeGradients(model, [x], y, sumLoss);
    const w1 = g.grads.get('moe/w1') as Tensor;
    const perExpert = tf.tidy(() => Array.from(tf.sum(tf.abs(w1), [1, 2]).dataSync()));
    expect(perExpert[2]).toBeGreaterThan(0);
    expect([perExpert[0], perExpert[1], perExpert[3]]).toEqual([0, 0, 0]);
    disposeGradients(g);
    model.dispose();
  });
});

describe('expert edits', () => {
  it('a copied expert with a split router entry preserves outputs to 1e-5, and training continues', async () => {
    const { addExpert } = await import('./index');
    const model = Model.create(mlp({ experts: 4, dropless: true }), { registry, seed: 5 });
    const x = tf.randomNormal([32, 6], 0, 1, 'float32', 6);
    const y = tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 3), 'int32');
    const optimizer = adam({ learningRate: 0.01 });
    const ce = (out: Tensor, t: Tensor): Tensor => tf.losses.softmaxCrossEntropy(tf.oneHot(t as tf.Tensor1D, 3), out);
    trainStep(model, [x], y, ce, optimizer); // Adam moments exist before the edit
    const before = model.apply(x);
    const loads = moeMetrics(Object.fromEntries([...model.run(x).metrics].map(([k, v]) => [k, v.dataSync()[0]])), 'moe').loads;
    expect(loads).toHaveLength(4);
    const busiest = loads.indexOf(Math.max(...loads));
    const tensors = tf.memory().numTensors;
    const entry = addExpert(model, 'moe', { copyOf: busiest });
    expect(model.param('moe/w1').value.shape[0]).toBe(5);
    expect(model.graph.nodes[0].attrs.experts).toBe(5);
    expect(entry.changes.some((c) => c.kind === 'insertUnits')).toBe(true);
    expect(maxDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);
    // Grown by exactly the new expert's parameters (and its Adam moments).
    const perExpert = 6 + 1 + 1 + 6 * 8 + 8 + 8 * 6 + 6;
    expect(tf.memory().numTensors).toBeLessThanOrEqual(tensors + 14);
    expect(entry.params.after - entry.params.before).toBe(perExpert);
    const first = trainStep(model, [x], y, ce, optimizer).loss;
    let last = first;
    for (let i = 0; i < 30; i++) last = trainStep(model, [x], y, ce, optimizer).loss;
    expect(last).toBeLessThan(first);
    // A fresh expert is added too.
    addExpert(model, 'moe');
    expect(model.param('moe/router').value.shape).toEqual([6, 6]);
    model.dispose();
  });

  it('remove and merge keep the model valid and trainable, with no leaked tensors', async () => {
    const { removeExpert, mergeExperts, leastUsedExpert } = await import('./index');
    const model = Model.create(mlp({ experts: 5, routing: 'top2' }), { registry, seed: 9 });
    const x = tf.randomNormal([48, 6], 0, 1, 'float32', 6);
    const y = tf.tensor1d(Array.from({ length: 48 }, (_, i) => i % 3), 'int32');
    const ce = (out: Tensor, t: Tensor): Tensor => tf.losses.softmaxCrossEntropy(tf.oneHot(t as tf.Tensor1D, 3), out);
    const optimizer = adam({ learningRate: 0.02 });
    let step = trainStep(model, [x], y, ce, optimizer);
    expect(Object.keys(step.losses).sort()).toEqual(['moe/balance', 'moe/z']);
    const tensors = tf.memory().numTensors;
    removeExpert(model, 'moe', leastUsedExpert(moeMetrics(step.metrics, 'moe').loads));
    mergeExperts(model, 'moe', 0, 1, { weights: [2, 1] });
    expect(model.param('moe/w2').value.shape[0]).toBe(3);
    expect(model.journal.map((j) => j.technique)).toEqual(['moe', 'moe']);
    // Two experts' params and Adam moments are gone.
    expect(tf.memory().numTensors).toBeLessThanOrEqual(tensors);
    const first = trainStep(model, [x], y, ce, optimizer).loss;
    const steady = tf.memory().numTensors;
    for (let i = 0; i < 30; i++) step = trainStep(model, [x], y, ce, optimizer);
    expect(tf.memory().numTensors).toBe(steady);
    expect(step.loss).toBeLessThan(first);
    expect(moeMetrics(step.metrics, 'moe').loads).toHaveLength(3);
    model.dispose();
  });

  it('bad input gives typed errors and leaves the model unchanged', async () => {
    const { removeExpert, addExpert } = await import('./index');
    // k larger than the number of experts.
    expect(() => Model.create(mlp({ routing: 'topk', k: 5, experts: 4 }), { registry })).toThrow(/INVALID_ATTRS.*k = 5/);
    const model = Model.create(mlp({ routing: 'top2', experts: 2 }), { registry, seed: 1 });
    const before = snapshot(model);
    const graph = JSON.stringify(model.graph);
    const tensors = tf.memory().numTensors;
    const expectCode = (body: () => unknown, code: Parameters<typeof isRsError>[1]): void => {
      let error: unknown;
      try {
        body();
      } catch (e) {
        error = e;
      }
      expect(isRsError(error, code)).toBe(true);
    };
    // Removing an expert would leave 1 < k = 2 experts: refused by validation, rolled back.
    expectCode(() => removeExpert(model, 'moe', 0), 'INVALID_ATTRS');
    // Capacity factor <= 0, or not finite (JSON would turn NaN into null, hence the default).
    for (const capacityFactor of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectCode(() => model.edit((tx) => tx.replaceNode('moe', { op: 'moe', inputs: ['x'], attrs: { experts: 2, hidden: 8, routing: 'top2', capacityFactor } })), 'INVALID_ATTRS');
    }
    expectCode(() => Model.create(mlp({ evalCapacityFactor: 0 }), { registry }), 'INVALID_ATTRS');
    expectCode(() => Model.create(mlp({ capacityFactor: Number.NaN }), { registry }), 'INVALID_ATTRS');
    expectCode(() => addExpert(model, 'moe', { copyOf: 7 }), 'UNIT_INDEX_OUT_OF_RANGE');
    expectCode(() => addExpert(model, 'head'), 'INVALID_ARGUMENT');
    expect(snapshot(model)).toEqual(before);
    expect(JSON.stringify(model.graph)).toBe(graph);
    expect(model.journal).toHaveLength(0);
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
    // Removing the last expert.
    const single = Model.create(mlp({ experts: 1 }), { registry, seed: 1 });
    const singleBefore = snapshot(single);
    expectCode(() => removeExpert(single, 'moe', 0), 'REMOVE_ALL_UNITS');
    expectCode(() => single.edit((tx) => tx.removeUnits('moe:experts', [0])), 'REMOVE_ALL_UNITS');
    expect(snapshot(single)).toEqual(singleBefore);
    single.dispose();
  });
});
