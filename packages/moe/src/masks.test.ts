import { describe, it, expect, beforeAll } from 'vitest';
import { Model, createOpRegistry, tf, trainStep, adam, type GraphDef, type Tensor } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { registerMoe, addExpert, mergeExperts, upcycle } from './index';

// Expert edits after pruning: every edit that copies or moves weights carries their masks (a
// split expert takes its source's mask, upcycled experts the dense FFN's), so counts, reports
// and training agree with the weights and pruned weights never regrow.

beforeAll(async () => {
  await install();
});

const registry = registerMoe(createOpRegistry());
const maxDiff = (a: Tensor, b: Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
const ce = (out: Tensor, t: Tensor): Tensor => tf.losses.softmaxCrossEntropy(tf.oneHot(t as tf.Tensor1D, 3), out);

/** Magnitude pruning through `setMask`: the smallest `fraction` of each parameter's weights. */
function prune(model: Model, keys: string[], fraction = 0.5): void {
  model.edit(
    (tx) => {
      for (const key of keys) {
        const value = tx.param(key).value;
        const sorted = Float32Array.from(value.dataSync()).map(Math.abs).sort();
        const threshold = sorted[Math.floor(fraction * sorted.length)];
        const mask = tf.tidy(() => tf.cast(tf.greaterEqual(tf.abs(value), threshold), 'float32'));
        tx.setMask(key, mask);
        mask.dispose();
      }
    },
    { technique: 'prune', reason: 'test' },
  );
}

/** Tensors alive that the model does not hold (values, masks, optimizer slots). */
function foreign(model: Model): number {
  let held = 0;
  for (const key of model.paramKeys()) {
    held += model.param(key).mask ? 2 : 1;
    held += model.internalState.slots.get(key)?.size ?? 0;
  }
  return tf.memory().numTensors - held;
}

function pruned(model: Model): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const key of model.paramKeys()) {
    const mask = model.param(key).mask?.dataSync();
    if (!mask) continue;
    const zeros: number[] = [];
    mask.forEach((m, i) => m === 0 && zeros.push(i));
    out.set(key, zeros);
  }
  return out;
}

/** `masked` keys have a mask, values are 0 where masks are 0, and nonzeroParams counts the non-zero weights. */
function expectConsistent(model: Model, masked: string[], what: string): void {
  let actual = 0;
  for (const key of model.paramKeys()) {
    const entry = model.param(key);
    if (masked.includes(key)) expect(entry.mask, `${what}: ${key} has no mask`).toBeDefined();
    if (entry.role === 'state') continue;
    if (!entry.mask) {
      actual += entry.value.size;
      continue;
    }
    const value = entry.value.dataSync();
    const mask = entry.mask.dataSync();
    let leaked = 0;
    mask.forEach((m, i) => {
      if (m === 0 && value[i] !== 0) leaked += 1;
      if (value[i] !== 0) actual += 1;
    });
    expect(leaked, `${what}: ${key} has non-zero values where its mask is 0`).toBe(0);
  }
  expect(model.counts().nonzeroParams, `${what}: reported vs actual non-zero weights`).toBe(actual);
}

async function trainAndCheck(model: Model, x: Tensor, y: Tensor, what: string): Promise<void> {
  const zeros = pruned(model);
  const optimizer = adam({ learningRate: 0.05 });
  for (let i = 0; i < 5; i++) trainStep(model, [x], y, ce, optimizer);
  for (const [key, list] of zeros) {
    const value = model.param(key).value.dataSync();
    expect(list.filter((i) => value[i] !== 0).length, `${what}: ${key} regrew pruned weights`).toBe(0);
  }
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
      prune(model, pruneKeys);
      const masks = Object.fromEntries(pruneKeys.map((k) => [k, JSON.stringify(model.param(k).mask?.arraySync())]));
      const before = model.apply(x);
      const outside = foreign(model);
      upcycle(model, { experts: 4, routing, dropless: true });
      expect(foreign(model), `${routing}: tensors leaked by upcycle`).toBe(outside);
      const after = model.apply(x);
      expect(maxDiff(before, after), routing).toBeLessThanOrEqual(1e-5);
      tf.dispose([before, after]);
      for (let e = 0; e < 4; e++) {
        expect(expertOf(model.param('moe/w1').mask as Tensor, e)).toBe(masks['ffn1/kernel']);
        expect(expertOf(model.param('moe/b1').mask as Tensor, e)).toBe(masks['ffn1/bias']);
        expect(expertOf(model.param('moe/w2').mask as Tensor, e)).toBe(masks['ffn2/kernel']);
      }
      // ffn2's bias was not pruned: no mask.
      expect(model.param('moe/b2').mask).toBeUndefined();
      expect(model.param('moe/router').mask).toBeUndefined();
      expectConsistent(model, ['moe/w1', 'moe/b1', 'moe/w2', 'head/kernel'], `upcycle ${routing}`);
      await trainAndCheck(model, x, y, `upcycle ${routing}`);
      expectConsistent(model, ['moe/w1', 'moe/b1', 'moe/w2', 'head/kernel'], `upcycle ${routing} (trained)`);
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
    prune(model, keys);
    const before = model.apply(x);
    const outside = foreign(model);
    addExpert(model, 'moe', { copyOf: 1 });
    expect(foreign(model), 'tensors leaked by addExpert').toBe(outside);
    const after = model.apply(x);
    expect(maxDiff(before, after)).toBeLessThanOrEqual(1e-5);
    tf.dispose([before, after]);
    // The copy is expert 2 (inserted right after its source).
    for (const key of ['moe/w1', 'moe/b1', 'moe/w2']) {
      const mask = model.param(key).mask as Tensor;
      expect(expertOf(mask, 2), key).toBe(expertOf(mask, 1));
    }
    const router = tf.tidy(() => tf.unstack(model.param('moe/router').mask as Tensor, 1).map((t) => JSON.stringify(t.arraySync())));
    expect(router[2]).toBe(router[1]);
    expectConsistent(model, keys, 'split');
    await trainAndCheck(model, x, y, 'split');
    expectConsistent(model, keys, 'split (trained)');
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
    prune(model, keys);
    const slices = (key: string, e: number) => tf.tidy(() => tf.unstack(model.param(key).value, 0)[e].dataSync());
    const maskOf = (key: string, e: number) => tf.tidy(() => tf.unstack(model.param(key).mask as Tensor, 0)[e].dataSync());
    const expected = Object.fromEntries(keys.map((k) => [k, { a: slices(k, 0), b: slices(k, 3), ma: maskOf(k, 0), mb: maskOf(k, 3) }]));
    const outside = foreign(model);
    mergeExperts(model, 'moe', 0, 3, { weights: [3, 1] });
    expect(foreign(model)).toBe(outside);
    for (const key of keys) {
      const { a, b, ma, mb } = expected[key];
      const merged = slices(key, 0);
      const mask = maskOf(key, 0);
      merged.forEach((v, i) => expect(v, `${key}[${i}]`).toBeCloseTo(0.75 * a[i] + 0.25 * b[i], 6));
      mask.forEach((m, i) => expect(m, `${key} mask [${i}]`).toBe(Math.max(ma[i], mb[i])));
    }
    expectConsistent(model, keys, 'merge');
    await trainAndCheck(model, x, y, 'merge');
    model.dispose();
    tf.dispose([x, y]);
    expect(tf.memory().numTensors).toBe(start);
  });
});
