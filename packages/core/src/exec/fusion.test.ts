import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '../tf';
import { useCpu, maxAbsDiff } from '../test-setup';
import { Model } from '../model';
import { lenet300100 } from '../models/builders';
import type { GraphDef } from '../ir/types';
import { valueAndGrads } from '../train/tape';
import { DENSE_KERNEL } from '../ops/dense';

beforeAll(useCpu);

const x = () => tf.randomNormal([5, 784], 0, 1, 'float32', 7);

/** Kernel names that one `f` call runs. */
async function kernels(f: () => tf.Tensor): Promise<string[]> {
  const profile = await tf.profile(() => {
    f().dispose();
  });
  return profile.kernels.map((k) => k.name);
}

describe('dense + relu fused in inference', () => {
  it('finds the pairs: a relu that is its dense node\'s only consumer, the dense node not an output', () => {
    const model = Model.create(lenet300100(), { seed: 0 });
    expect([...(model.plan.fusable ?? new Map())]).toEqual([
      ['relu1', 'fc1'],
      ['relu2', 'fc2'],
    ]);
    const shared: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 4], dtype: 'float32' }],
      nodes: [
        { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 4 } },
        { id: 'b', op: 'relu', inputs: ['a'], attrs: {} },
        { id: 'c', op: 'dense', inputs: ['a'], attrs: { units: 2 } },
        { id: 'd', op: 'dense', inputs: ['b'], attrs: { units: 3 } },
        { id: 'e', op: 'relu', inputs: ['d'], attrs: {} },
      ],
      outputs: ['c', 'd', 'e'],
    };
    // a feeds two nodes; d is an output: neither pair fuses.
    expect(Model.create(shared, { seed: 0 }).plan.fusable?.size).toBe(0);
  });

  it('gives the unfused outputs, runs no Relu kernel, and leaks nothing', async () => {
    const model = Model.create(lenet300100(), { seed: 3 });
    const input = x();
    const fused = model.apply(input);
    // A tap on a dense node needs its own value: that run is not fused.
    const tapped = model.run(input, { taps: { activations: ['fc1', 'fc2'] } });
    expect(maxAbsDiff(fused, tapped.outputs[0])).toBeLessThanOrEqual(1e-6);
    // The taps hold the dense nodes' values before the relu.
    expect(tf.min(tapped.activations.get('fc1') as tf.Tensor).dataSync()[0]).toBeLessThan(0);
    const before = tf.memory().numTensors;
    expect(await kernels(() => model.apply(input))).not.toContain('Relu');
    expect(tf.memory().numTensors).toBe(before);
    expect(await kernels(() => model.run(input, { taps: { activations: ['fc1'] } }).outputs[0])).toContain('Relu');
    tf.dispose([fused, tapped.outputs[0], ...tapped.activations.values(), input]);
    model.dispose();
  });

  it('is off under a gradient tape, when training, and when the dense node is a target', async () => {
    const model = Model.create(lenet300100(), { seed: 3 });
    const input = x();
    expect(await kernels(() => model.apply(input, { training: true }))).toContain('Relu');
    const pre = model.apply(input, { targets: ['fc1'] });
    expect(tf.min(pre).dataSync()[0]).toBeLessThan(0);
    const w = model.param('fc1/kernel').value;
    const names = await kernels(() => tf.tidy(() => valueAndGrads(() => tf.sum(model.apply(input)), [w]).value));
    expect(names).toContain('Relu');
    tf.dispose([pre, input]);
    model.dispose();
  });
});

describe('dense inference kernel', () => {
  const registry = tf as unknown as {
    getKernel(name: string, backend: string): { kernelFunc: unknown } | undefined;
    registerKernel(config: { kernelName: string; backendName: string; kernelFunc: unknown }): void;
    unregisterKernel(name: string, backend: string): void;
  };

  it('runs DENSE_KERNEL on rank-2 operands where the backend registers it, _FusedMatMul on rank-3 views otherwise, with one result', async () => {
    const model = Model.create(lenet300100({ hidden: [7, 5] }), { seed: 4 });
    const unbiased = Model.create(
      { inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }], nodes: [{ id: 'fc', op: 'dense', inputs: ['x'], attrs: { units: 3, useBias: false } }, { id: 'r', op: 'relu', inputs: ['fc'], attrs: {} }, { id: 'out', op: 'dense', inputs: ['r'], attrs: { units: 2 } }], outputs: ['out'] },
      { seed: 5 },
    );
    const input = x();
    expect(registry.getKernel(DENSE_KERNEL, 'cpu')).toBeUndefined();
    const viaViews = [model.apply(input), unbiased.apply(input)];
    const viewKernels = await kernels(() => model.apply(input));
    expect(viewKernels.filter((k) => k === '_FusedMatMul')).toHaveLength(3);
    expect(viewKernels).toContain('Reshape');
    registry.registerKernel({ kernelName: DENSE_KERNEL, backendName: 'cpu', kernelFunc: registry.getKernel('_FusedMatMul', 'cpu')?.kernelFunc });
    try {
      const direct = [model.apply(input), unbiased.apply(input)];
      expect(await kernels(() => model.apply(input))).toEqual([DENSE_KERNEL, DENSE_KERNEL, DENSE_KERNEL]);
      for (let i = 0; i < 2; i++) {
        expect(direct[i].shape).toEqual(viaViews[i].shape);
        expect(maxAbsDiff(direct[i], viaViews[i])).toBeLessThanOrEqual(1e-6);
      }
      const before = tf.memory().numTensors;
      model.apply(input).dispose();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose(direct);
    } finally {
      registry.unregisterKernel(DENSE_KERNEL, 'cpu');
    }
    tf.dispose([...viaViews, input]);
    model.dispose();
    unbiased.dispose();
  });
});
