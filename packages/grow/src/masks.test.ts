import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, fit, adam, lenet300100, lenet5, type GraphDef, type Tensor } from '@rs/core';
import { maxAbsDiff } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { widen, deepen } from './net2net';
import { growGradMax } from './gradmax';

// Growth after pruning: every edit that copies weights carries their masks (copies take their
// source's mask, fresh units an all-ones mask), so counts, reports and training agree with the
// weights, and a pruned weight copied into a new unit does not regrow.

beforeAll(async () => {
  await install();
});

const data = (n: number, d: number | number[], seed: number) =>
  tf.tidy(() => {
    const shape = typeof d === 'number' ? [n, d] : [n, ...d];
    const x = tf.randomNormal(shape, 0, 1, 'float32', seed);
    const flat = tf.reshape(x, [n, -1]);
    const y = tf.reshape(tf.cast(tf.greater(tf.sum(tf.slice(flat, [0, 0], [-1, 2]), 1), 0), 'int32'), [n]);
    return { x, y };
  });

/** Magnitude pruning through `setMask`: the smallest `fraction` of each kernel's weights. */
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
    const entry = model.param(key);
    held += entry.mask ? 2 : 1;
    held += model.internalState.slots.get(key)?.size ?? 0;
  }
  return tf.memory().numTensors - held;
}

/** Positions where the mask is 0, per masked parameter. */
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

/**
 * The invariants of a masked model: `masked` keys have a mask, the value is 0 wherever the mask
 * is 0, and `counts().nonzeroParams` is the number of non-zero weights (a parameter without a
 * mask counts whole, as `count` defines it; a masked one counts its non-zero values).
 */
function expectConsistent(model: Model, masked: string[], what: string, options: { liveNonzero?: boolean } = {}): void {
  let actual = 0;
  for (const key of model.paramKeys()) {
    const entry = model.param(key);
    if (masked.includes(key)) expect(entry.mask, `${what}: ${key} lost its mask`).toBeDefined();
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
  if (options.liveNonzero !== false) expect(model.counts().nonzeroParams, `${what}: reported vs actual non-zero weights`).toBe(actual);
}

/** Every position pruned before training is still exactly 0 after it. */
function expectStillZero(model: Model, before: Map<string, number[]>, what: string): void {
  for (const [key, zeros] of before) {
    const value = model.param(key).value.dataSync();
    const regrown = zeros.filter((i) => value[i] !== 0).length;
    expect(regrown, `${what}: ${key} regrew ${regrown} pruned weight(s)`).toBe(0);
  }
}

describe('growth keeps masks (prune -> grow)', () => {
  it('prune -> widen: copies take their source unit\'s mask on every coupled axis (dense and conv)', async () => {
    const start = tf.memory().numTensors;
    const cases: [GraphDef, string, string[], number | number[]][] = [
      [lenet300100({ inputs: 8, hidden: [6, 4], classes: 3 }), 'fc1', ['fc1/kernel', 'fc2/kernel', 'fc3/kernel'], 8],
      [lenet5({ filters: [3, 4], hidden: [8, 6] }), 'conv2', ['conv1/kernel', 'conv2/kernel', 'fc1/kernel'], [28, 28, 1]],
    ];
    for (const [graph, group, kernels, input] of cases) {
      for (const split of ['random', 'even', 'random-weights'] as const) {
        const what = `${group} ${split}`;
        const model = Model.create(graph, { seed: 1 });
        const { x, y } = data(16, input, 2);
        prune(model, kernels);
        expectConsistent(model, kernels, `${what} (pruned)`);
        const before = model.apply(x);
        const size = model.group(group).size;
        const outside = foreign(model);
        const { sources } = widen(model, group, 3, { seed: 2, split });
        expect(foreign(model), `${what}: tensors leaked by the edit`).toBe(outside);
        expect(model.group(group).size).toBe(size + 3);
        expectConsistent(model, kernels, what);
        // The copy of unit s has unit s's mask along each axis of the group.
        const members = model.group(group).params.filter((m) => kernels.includes(m.param) && m.inner === 1 && m.outer.length === 0 && m.offset === 0);
        expect(members.length).toBeGreaterThan(0);
        for (const m of members) {
          const mask = tf.tidy(() => tf.unstack(model.param(m.param).mask as Tensor, m.axis).map((t) => JSON.stringify(t.arraySync())));
          sources.forEach((s, j) => expect(mask[size + j], `${what}: ${m.param} copy ${j} of unit ${s}`).toBe(mask[s]));
        }
        const after = model.apply(x);
        expect(maxAbsDiff(before, after), what).toBeLessThanOrEqual(1e-5);
        tf.dispose([before, after]);
        const zeros = pruned(model);
        await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 0.05 }), epochs: 2, batchSize: 8 });
        expectStillZero(model, zeros, what);
        expectConsistent(model, kernels, `${what} (trained)`);
        model.dispose();
        tf.dispose([x, y]);
      }
    }
    expect(tf.memory().numTensors).toBe(start);
  });

  it('prune -> deepen: the existing masks stay, the identity layer is fresh (no mask), the function is kept', async () => {
    const start = tf.memory().numTensors;
    const cases: [GraphDef, string[], number | number[]][] = [
      [lenet300100({ inputs: 8, hidden: [6, 4], classes: 3 }), ['fc1/kernel', 'fc2/kernel', 'fc3/kernel'], 8],
      [lenet5({ filters: [3, 4], hidden: [8, 6] }), ['conv1/kernel', 'conv2/kernel', 'fc1/kernel'], [28, 28, 1]],
    ];
    for (const [graph, kernels, input] of cases) {
      const model = Model.create(graph, { seed: 1 });
      const { x, y } = data(16, input, 3);
      prune(model, kernels);
      const masks = kernels.map((k) => JSON.stringify(model.param(k).mask?.arraySync()));
      const before = model.apply(x);
      const outside = foreign(model);
      const { nodes } = deepen(model, 'relu1');
      expect(foreign(model)).toBe(outside);
      expect(model.param(`${nodes[0]}/kernel`).mask).toBeUndefined();
      kernels.forEach((k, i) => expect(JSON.stringify(model.param(k).mask?.arraySync()), k).toBe(masks[i]));
      // The identity kernel is mostly zeros but unmasked: it counts whole, as any dense weight.
      expectConsistent(model, kernels, 'deepen');
      const after = model.apply(x);
      expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-5);
      tf.dispose([before, after]);
      const zeros = pruned(model);
      await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 0.05 }), epochs: 2, batchSize: 8 });
      expectStillZero(model, zeros, 'deepen');
      model.dispose();
      tf.dispose([x, y]);
    }
    expect(tf.memory().numTensors).toBe(start);
  });

  it('prune -> GradMax and zero fan-out growth: fresh units get all-ones masks, the old pruned positions stay 0', async () => {
    const start = tf.memory().numTensors;
    const kernels = ['fc1/kernel', 'fc2/kernel', 'fc3/kernel'];
    for (const method of ['gradmax', 'insertUnits'] as const) {
      const model = Model.create(lenet300100({ inputs: 8, hidden: [6, 4], classes: 3 }), { seed: 1 });
      const { x, y } = data(32, 8, 4);
      prune(model, kernels);
      const old = new Map(kernels.map((k) => [k, model.param(k).mask?.arraySync() as number[][]]));
      const before = model.apply(x);
      const outside = foreign(model);
      if (method === 'gradmax') growGradMax(model, 'fc1', 2, { batch: { x, y } });
      else model.edit((tx) => tx.insertUnits('fc1', 2));
      expect(foreign(model)).toBe(outside);
      const fc1 = model.param('fc1/kernel').mask?.arraySync() as number[][];
      const fc2 = model.param('fc2/kernel').mask?.arraySync() as number[][];
      expect(fc1.map((row) => row.slice(0, 6))).toEqual(old.get('fc1/kernel'));
      expect(fc1.every((row) => row[6] === 1 && row[7] === 1)).toBe(true);
      expect(fc2.slice(0, 6)).toEqual(old.get('fc2/kernel'));
      expect(fc2.slice(6).flat().every((m) => m === 1)).toBe(true);
      // Fresh units may start at exactly 0 (GradMax's fan-in) while live: no non-zero equality here.
      expectConsistent(model, kernels, method, { liveNonzero: false });
      const after = model.apply(x);
      expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-5);
      tf.dispose([before, after]);
      const zeros = pruned(model);
      await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 0.05 }), epochs: 2, batchSize: 8 });
      expectStillZero(model, zeros, method);
      model.dispose();
      tf.dispose([x, y]);
    }
    expect(tf.memory().numTensors).toBe(start);
  });
});
