import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, lenet300100, lenet5, charTransformer, createOpRegistry, type Tensor } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { pruneUnits, pruneWeights } from '@rs/prune';
import { addExit } from '@rs/dynamic';
import { dartsSupernet, registerNasOps } from '@rs/nas';
import { ProgressiveNet } from '@rs/progressive';
import { toOnnx } from './index';
import { onnx } from './proto';
import { compareWithOrt, randomInput, TOLERANCE } from './test-harness';

beforeAll(async () => {
  await install();
});

async function roundTrip(model: Model, inputs: Tensor[], options = {}): Promise<number> {
  try {
    const result = await compareWithOrt(model, inputs, options);
    expect(result.maxAbs).toBeGreaterThan(1e-3);
    return result.maxDiff;
  } finally {
    tf.dispose(inputs);
  }
}

describe('whole models round-trip through ONNX Runtime within 1e-4', () => {
  it('LeNet-300-100', async () => {
    const model = Model.create(lenet300100(), { seed: 1 });
    expect(await roundTrip(model, [randomInput([4, 784], 2)])).toBeLessThanOrEqual(TOLERANCE);
    model.dispose();
  });

  it('LeNet-5 (NHWC input, as fed to the model)', async () => {
    const model = Model.create(lenet5(), { seed: 1 });
    expect(await roundTrip(model, [randomInput([3, 28, 28, 1], 2)])).toBeLessThanOrEqual(TOLERANCE);
    model.dispose();
  });

  it('pruned LeNet-300-100: units removed physically, 90% of weights masked (masked weights export as zeros)', async () => {
    const model = Model.create(lenet300100(), { seed: 1 });
    pruneUnits(model, { fraction: 0.5, score: 'l1', groups: ['fc1', 'fc2'] });
    pruneWeights(model, { sparsity: 0.9, score: 'l1', scope: 'layer' });
    expect(model.param('fc1/kernel').value.shape).toEqual([784, 150]);
    const masked = model.param('fc1/kernel').mask as Tensor;
    expect(masked).toBeDefined();
    expect(await roundTrip(model, [randomInput([4, 784], 2)])).toBeLessThanOrEqual(TOLERANCE);
    // The initializers hold the physically smaller kernels with their pruned weights at zero.
    const decoded = onnx.ModelProto.decode(toOnnx(model));
    const kernel = decoded.graph?.initializer?.find((t) => t.name === 'fc1/kernel');
    expect(kernel?.dims?.map(Number)).toEqual([784, 150]);
    const raw = kernel?.rawData as Uint8Array;
    const values = new Float32Array(new Uint8Array(raw).buffer);
    const zeros = values.filter((v) => v === 0).length;
    const kept = tf.tidy(() => tf.sum(masked).dataSync()[0]);
    expect(zeros).toBe(values.length - kept);
    expect(zeros / values.length).toBeGreaterThan(0.85);
    model.dispose();
  });

  it('pruned LeNet-5: channels removed from both convs', async () => {
    const model = Model.create(lenet5(), { seed: 1 });
    pruneUnits(model, { fraction: 0.5, score: 'l1', groups: ['conv1', 'conv2'] });
    expect(model.param('conv1/kernel').value.shape[3]).toBe(3);
    expect(await roundTrip(model, [randomInput([2, 28, 28, 1], 4)])).toBeLessThanOrEqual(TOLERANCE);
    model.dispose();
  });

  it('early exit (addExit): the static form computes every exit, all outputs match', async () => {
    const model = Model.create(lenet5(), { seed: 1 });
    const exit = addExit(model, { at: 'pool1', classes: 10, pool: 2, hidden: [16] });
    expect(model.graph.outputs).toEqual([exit, 'fc3']);
    expect(await roundTrip(model, [randomInput([3, 28, 28, 1], 5)])).toBeLessThanOrEqual(TOLERANCE);
    // Only the exit: the trunk after pool1 is not exported.
    const bytes = toOnnx(model, { outputs: [exit] });
    expect(bytes.length).toBeLessThan(toOnnx(model).length / 2);
    expect(await roundTrip(model, [randomInput([2, 28, 28, 1], 6)], { outputs: [exit] })).toBeLessThanOrEqual(TOLERANCE);
    model.dispose();
  });

  it('charTransformer (embedding, position embedding, causal attention, layerNorm, gelu)', async () => {
    const model = Model.create(charTransformer({ vocabSize: 13, context: 8, dim: 16, heads: 4, layers: 2 }), { seed: 1 });
    const ids = tf.tensor2d(Array.from({ length: 3 * 8 }, (_, i) => (i * 7 + 3) % 13), [3, 8], 'int32');
    expect(await roundTrip(model, [ids])).toBeLessThanOrEqual(TOLERANCE);
    model.dispose();
  });
});

describe('technique ops in their exact static form', () => {
  it('nas.mixed and nas.zero: a DARTS supernet (softmax(alpha)-weighted candidates)', async () => {
    const registry = registerNasOps(createOpRegistry());
    const model = Model.create(dartsSupernet({ inputShape: [8, 8, 1], channels: 4, classes: 5 }), { registry, seed: 1 });
    // Non-uniform architecture weights, so a wrong weighting would show.
    model.edit((tx) => {
      for (const key of model.paramKeys().filter((k) => k.endsWith('/alpha'))) {
        const alpha = tf.tensor1d(Array.from({ length: model.param(key).value.shape[0] }, (_, i) => (i - 2) * 0.7));
        tx.setParam(key, alpha);
        alpha.dispose();
      }
    });
    expect(model.graph.nodes.some((n) => n.op === 'nas.zero')).toBe(true);
    expect(await roundTrip(model, [randomInput([2, 8, 8, 1], 7)])).toBeLessThanOrEqual(TOLERANCE);
    model.dispose();
  });

  it('learnedScale: a progressive network with lateral adapters, every column', async () => {
    const net = ProgressiveNet.create(lenet300100({ inputs: 12, hidden: [8, 6], classes: 3 }), { task: 'a', seed: 1 });
    net.addColumn('b');
    const model = net.model;
    expect(model.graph.nodes.some((n) => n.op === 'learnedScale')).toBe(true);
    model.edit((tx) => {
      for (const key of model.paramKeys().filter((k) => k.endsWith('/alpha'))) {
        const alpha = tf.tensor1d([1.7]);
        tx.setParam(key, alpha);
        alpha.dispose();
      }
    });
    const outputs = net.columns.map((c) => model.graph.nodes.find((n) => n.id.startsWith(c.prefix) && n.id.endsWith('fc3'))?.id as string);
    expect(await roundTrip(model, [randomInput([3, 12], 8)], { outputs })).toBeLessThanOrEqual(TOLERANCE);
    model.dispose();
  });
});
