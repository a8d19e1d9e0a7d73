import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, fit, adam, lenet300100, lenet5, type GraphDef, type Tensor } from '@rs/core';
import { maxAbsDiff, maskSmallest, foreignTensors, maskedZeros, maskProblems, regrownProblems } from '@rs/core/testing';
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
        maskSmallest(model, kernels);
        expect(maskProblems(model, { masked: kernels }), `${what} (pruned)`).toEqual([]);
        const before = model.apply(x);
        const size = model.group(group).size;
        const outside = foreignTensors(model);
        const { sources } = widen(model, group, 3, { seed: 2, split });
        expect(foreignTensors(model), `${what}: tensors leaked by the edit`).toBe(outside);
        expect(model.group(group).size).toBe(size + 3);
        expect(maskProblems(model, { masked: kernels }), what).toEqual([]);
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
        const zeros = maskedZeros(model);
        await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 0.05 }), epochs: 2, batchSize: 8 });
        expect(regrownProblems(model, zeros), what).toEqual([]);
        expect(maskProblems(model, { masked: kernels }), `${what} (trained)`).toEqual([]);
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
      maskSmallest(model, kernels);
      const masks = kernels.map((k) => JSON.stringify(model.param(k).mask?.arraySync()));
      const before = model.apply(x);
      const outside = foreignTensors(model);
      const { nodes } = deepen(model, 'relu1');
      expect(foreignTensors(model)).toBe(outside);
      expect(model.param(`${nodes[0]}/kernel`).mask).toBeUndefined();
      kernels.forEach((k, i) => expect(JSON.stringify(model.param(k).mask?.arraySync()), k).toBe(masks[i]));
      // The identity kernel is mostly zeros but unmasked: it counts whole, as any dense weight.
      expect(maskProblems(model, { masked: kernels }), 'deepen').toEqual([]);
      const after = model.apply(x);
      expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-5);
      tf.dispose([before, after]);
      const zeros = maskedZeros(model);
      await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 0.05 }), epochs: 2, batchSize: 8 });
      expect(regrownProblems(model, zeros), 'deepen').toEqual([]);
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
      maskSmallest(model, kernels);
      const old = new Map(kernels.map((k) => [k, model.param(k).mask?.arraySync() as number[][]]));
      const before = model.apply(x);
      const outside = foreignTensors(model);
      if (method === 'gradmax') growGradMax(model, 'fc1', 2, { batch: { x, y } });
      else model.edit((tx) => tx.insertUnits('fc1', 2));
      expect(foreignTensors(model)).toBe(outside);
      const fc1 = model.param('fc1/kernel').mask?.arraySync() as number[][];
      const fc2 = model.param('fc2/kernel').mask?.arraySync() as number[][];
      expect(fc1.map((row) => row.slice(0, 6))).toEqual(old.get('fc1/kernel'));
      expect(fc1.every((row) => row[6] === 1 && row[7] === 1)).toBe(true);
      expect(fc2.slice(0, 6)).toEqual(old.get('fc2/kernel'));
      expect(fc2.slice(6).flat().every((m) => m === 1)).toBe(true);
      // Fresh units may start at exactly 0 (GradMax's fan-in) while live: no non-zero equality here.
      expect(maskProblems(model, { masked: kernels, liveNonzero: false }), method).toEqual([]);
      const after = model.apply(x);
      expect(maxAbsDiff(before, after)).toBeLessThanOrEqual(1e-5);
      tf.dispose([before, after]);
      const zeros = maskedZeros(model);
      await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 0.05 }), epochs: 2, batchSize: 8 });
      expect(regrownProblems(model, zeros), method).toEqual([]);
      model.dispose();
      tf.dispose([x, y]);
    }
    expect(tf.memory().numTensors).toBe(start);
  });
});
