import { describe, it, expect, beforeAll } from 'vitest';
import { Model, createOpRegistry, tf, trainStep, adam, type GraphDef, type Tensor } from '@rs/core';
import { maxAbsDiff, maskSmallest, foreignTensors, maskedZeros, maskProblems, regrownProblems } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { registerMoe, addExpert, mergeExperts, upcycle } from './index';

// Expert edits after pruning: every edit that copies or moves weights carries their masks (a
// split expert takes its source's mask, upcycled experts the dense FFN's), so counts, reports
// and training agree with the weights and pruned weights never regrow.

beforeAll(async () => {
  await install();
});

const registry = registerMoe(createOpRegistry());
const ce = (out: Tensor, t: Tensor): Tensor => tf.losses.softmaxCrossEntropy(tf.oneHot(t as tf.Tensor1D, 3), out);

async function trainAndCheck(model: Model, x: Tensor, y: Tensor, what: string): Promise<void> {
  const zeros = maskedZeros(model);
  const optimizer = adam({ learningRate: 0.05 });
  for (let i = 0; i < 5; i++) trainStep(model, [x], y, ce, optimizer);
  expect(regrownProblems(model, zeros), what).toEqual([]);
}

/** One expert's slice (expert axis 0) as nested arrays. */
const expertOf = (t: Tensor, e: number) => JSON.stringify(tf.tidy(() => tf.unstack(t, 0)[e].arraySync()));

function moeMlp(experts: number): GraphDef {
  return {
    inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
    nodes: [
      { id: 'moe', op: 'moe', inputs: ['x'], attrs: { experts, hidden: 8, dropless: true } },
      { id: 'res', op: 'add', inputs: ['x', 'moe'], attrs: {} },
      { id: 'head', op: 'dense', inputs: ['res'], attrs: { units: 3 } },
    ],
    outputs: ['head'],
  };
}

const ffnMlp: GraphDef = {
  inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
  nodes: [
    { id: 'ffn1', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
    { id: 'act', op: 'relu', inputs: ['ffn1'], attrs: {} },
    { id: 'ffn2', op: 'dense', inputs: ['act'], attrs: { units: 6 } },
    { id: 'res', op: 'add', inputs: ['x', 'ffn2'], attrs: {} },
    { id: 'head', op: 'dense', inputs: ['res'], attrs: { units: 3 } },
  ],
  outputs: ['head'],
};

describe('expert edits keep masks (prune -> edit)', () => {
  it('prune -> upcycle: every expert takes the dense FFN\'s kernel and bias masks; function kept; pruned weights stay 0', async () => {
    const start = tf.memory().numTensors;
    for (const routing of ['top2', 'topk'] as const) {
      const model = Model.create(ffnMlp, { registry, seed: 3 });
      const x = tf.randomNormal([24, 6], 0, 1, 'float32', 4);
      const y = tf.tensor1d(Array.from({ length: 24 }, (_, i) => i % 3), 'int32');
      // A bias with non-zero values, so that its mask matters.
      model.edit((tx) => {
        const bias = tf.randomNormal([8], 0, 1, 'float32', 5);
        tx.setParam('ffn1/bias', bias);
        bias.dispose();
      });
      const pruneKeys = ['ffn1/kernel', 'ffn1/bias', 'ffn2/kernel', 'head/kernel'];
      maskSmallest(model, pruneKeys);
      const masks = Object.fromEntries(pruneKeys.map((k) => [k, JSON.stringify(model.param(k).mask?.arraySync())]));
      const before = model.apply(x);
      const outside = foreignTensors(model);
      upcycle(model, { experts: 4, routing, dropless: true });
      expect(foreignTensors(model), `${routing}: tensors leaked by upcycle`).toBe(outside);
      const after = model.apply(x);
      expect(maxAbsDiff(before, after), routing).toBeLessThanOrEqual(1e-5);
      tf.dispose([before, after]);
      for (let e = 0; e < 4; e++) {
        expect(expertOf(model.param('moe/w1').mask as Tensor, e)).toBe(masks['ffn1/kernel']);
        expect(expertOf(model.param('moe/b1').mask as Tensor, e)).toBe(masks['ffn1/bias']);
        expect(expertOf(model.param('moe/w2').mask as Tensor, e)).toBe(masks['ffn2/kernel']);
      }
      // ffn2's bias was not pruned: no mask.
      expect(model.param('moe/b2').mask).toBeUndefined();
      expect(model.param('moe/router').mask).toBeUndefined();
      expect(maskProblems(model, { masked: ['moe/w1', 'moe/b1', 'moe/w2', 'head/kernel'] }), `upcycle ${routing}`).toEqual([]);
      await trainAndCheck(model, x, y, `upcycle ${routing}`);
      expect(maskProblems(model, { masked: ['moe/w1', 'moe/b1', 'moe/w2', 'head/kernel'] }), `upcycle ${routing} (trained)`).toEqual([]);
      model.dispose();
      tf.dispose([x, y]);
    }
    expect(tf.memory().numTensors).toBe(start);
  });

  it('prune -> split expert (addExpert copyOf): the copy takes its source\'s mask slices; function kept; pruned weights stay 0', async () => {
    const start = tf.memory().numTensors;
    const model = Model.create(moeMlp(4), { registry, seed: 5 });
    const x = tf.randomNormal([32, 6], 0, 1, 'float32', 6);
    const y = tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 3), 'int32');
    const keys = ['moe/w1', 'moe/b1', 'moe/w2', 'moe/router'];
    model.edit((tx) => {
      const bias = tf.randomNormal([4, 8], 0, 1, 'float32', 7);
      tx.setParam('moe/b1', bias);
      bias.dispose();
    });
    maskSmallest(model, keys);
    const before = model.apply(x);
    const outside = foreignTensors(model);
    addExpert(model, 'moe', { copyOf: 1 });
    expect(foreignTensors(model), 'tensors leaked by addExpert').toBe(outside);
    const after = model.apply(x);
    expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-5);
    tf.dispose([before, after]);
    // The copy is expert 2 (inserted right after its source).
    for (const key of ['moe/w1', 'moe/b1', 'moe/w2']) {
      const mask = model.param(key).mask as Tensor;
      expect(expertOf(mask, 2), key).toBe(expertOf(mask, 1));
    }
    const router = tf.tidy(() => tf.unstack(model.param('moe/router').mask as Tensor, 1).map((t) => JSON.stringify(t.arraySync())));
    expect(router[2]).toBe(router[1]);
    expect(maskProblems(model, { masked: keys }), 'split').toEqual([]);
    await trainAndCheck(model, x, y, 'split');
    expect(maskProblems(model, { masked: keys }), 'split (trained)').toEqual([]);
    model.dispose();
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).toBe(start);
  });

  it('prune -> mergeExperts: the merged expert is the weighted average of both, its mask their union', async () => {
    const start = tf.memory().numTensors;
    const model = Model.create(moeMlp(4), { registry, seed: 8 });
    const x = tf.randomNormal([32, 6], 0, 1, 'float32', 9);
    const y = tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 3), 'int32');
    const keys = ['moe/w1', 'moe/w2'];
    maskSmallest(model, keys);
    const slices = (key: string, e: number) => tf.tidy(() => tf.unstack(model.param(key).value, 0)[e].dataSync());
    const maskOf = (key: string, e: number) => tf.tidy(() => tf.unstack(model.param(key).mask as Tensor, 0)[e].dataSync());
    const expected = Object.fromEntries(keys.map((k) => [k, { a: slices(k, 0), b: slices(k, 3), ma: maskOf(k, 0), mb: maskOf(k, 3) }]));
    const outside = foreignTensors(model);
    mergeExperts(model, 'moe', 0, 3, { weights: [3, 1] });
    expect(foreignTensors(model)).toBe(outside);
    for (const key of keys) {
      const { a, b, ma, mb } = expected[key];
      const merged = slices(key, 0);
      const mask = maskOf(key, 0);
      merged.forEach((v, i) => expect(v, `${key}[${i}]`).toBeCloseTo(0.75 * a[i] + 0.25 * b[i], 6));
      mask.forEach((m, i) => expect(m, `${key} mask [${i}]`).toBe(Math.max(ma[i], mb[i])));
    }
    expect(maskProblems(model, { masked: keys }), 'merge').toEqual([]);
    await trainAndCheck(model, x, y, 'merge');
    model.dispose();
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).toBe(start);
  });
});
