import { describe, it, expect, beforeAll } from 'vitest';
import { Model, createOpRegistry, tf, trainStep, adam, softmaxCrossEntropy, charTransformer, lenet300100, type Tensor } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { registerMoe, moeGraph, findFfns, upcycle, moeMetrics } from './index';

beforeAll(async () => {
  await install();
});

const registry = registerMoe(createOpRegistry());
const maxDiff = (a: Tensor, b: Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

describe('MoE in a transformer block and in an MLP', () => {
  it('replaces the FFNs of charTransformer by Switch layers that train, reporting both losses every step', () => {
    const dense = charTransformer({ vocabSize: 12, context: 8, dim: 16, heads: 2, layers: 2, ffn: 16 });
    expect(findFfns(dense).map((c) => c.ffn1)).toEqual(['block0.ffn1', 'block1.ffn1']);
    const model = Model.create(moeGraph(dense, { experts: 4, routing: 'switch' }), { registry, seed: 1 });
    expect(model.graph.nodes.filter((n) => n.op === 'moe').map((n) => n.id)).toEqual(['block0.moe', 'block1.moe']);
    // The residual stream (embedding width) is one unit group that includes the MoE outputs.
    expect(model.group('block0.moe:experts').size).toBe(4);
    const ids = Int32Array.from({ length: 8 * 9 }, (_, i) => (i * 7 + (i >> 3)) % 12);
    const x = tf.tensor2d(ids.slice(0, 64), [8, 8], 'int32');
    const y = tf.tensor2d(ids.slice(8, 72), [8, 8], 'int32');
    const optimizer = adam({ learningRate: 0.01 });
    const losses: number[] = [];
    const tensors = tf.memory().numTensors;
    let steady = 0;
    for (let step = 0; step < 12; step++) {
      const result = trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
      if (step === 0) steady = tf.memory().numTensors;
      expect(Object.keys(result.losses).sort()).toEqual(['block0.moe/balance', 'block0.moe/z', 'block1.moe/balance', 'block1.moe/z']);
      const m = moeMetrics(result.metrics, 'block1.moe');
      expect(m.loads).toHaveLength(4);
      expect(m.loads.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
      expect(m.entropy).toBeGreaterThan(0);
      losses.push(result.loss);
    }
    expect(tf.memory().numTensors).toBe(steady);
    expect(steady).toBeGreaterThan(tensors); // Adam moments were created on the first step
    expect(losses[11]).toBeLessThan(losses[0] - 0.3);
    model.dispose();
  });

  it('sparse upcycling keeps a trained MLP function (zero router, dropless) and then trains on', () => {
    const model = Model.create(lenet300100({ inputs: 10, hidden: [12, 8], classes: 3 }), { registry, seed: 4 });
    const x = tf.randomNormal([40, 10], 0, 1, 'float32', 1);
    const y = tf.tensor1d(Array.from({ length: 40 }, (_, i) => i % 3), 'int32');
    const optimizer = adam({ learningRate: 0.01 });
    for (let i = 0; i < 10; i++) trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
    const before = model.apply(x);
    const entry = upcycle(model, { ffns: ['fc1'], experts: 4, routing: 'switch', dropless: true, routerInit: 'zeros' });
    expect(entry.technique).toBe('moe');
    expect(model.graph.nodes.map((n) => n.op)).toEqual(['moe', 'relu', 'dense']);
    expect(model.param('fc1.moe/w1').value.shape).toEqual([4, 10, 12]);
    expect(maxDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);
    const first = trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss;
    let last = first;
    for (let i = 0; i < 20; i++) last = trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss;
    expect(last).toBeLessThan(first);
    model.dispose();
  });

  it('upcycles a transformer FFN into top-2 gelu experts (function kept), and noisy top-k is random only while training', () => {
    const model = Model.create(charTransformer({ vocabSize: 10, context: 6, dim: 8, heads: 2, layers: 1, ffn: 16 }), { registry, seed: 2 });
    const x = tf.tensor2d(Int32Array.from({ length: 24 }, (_, i) => (i * 3) % 10), [4, 6], 'int32');
    const before = model.apply(x);
    upcycle(model, { experts: 3, routing: 'topk', k: 2, dropless: true });
    expect(model.graph.nodes.find((n) => n.id === 'block0.moe')?.attrs.activation).toBe('gelu');
    // Identical copies with gates that sum to 1: the same function, with a random router.
    expect(maxDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);

    const noisy = Model.create(moeGraph(charTransformer({ vocabSize: 10, context: 6, dim: 8, heads: 2, layers: 1, ffn: 16 }), { experts: 4, routing: 'topk', k: 2 }), { registry, seed: 3 });
    expect(noisy.paramKeys()).toContain('block0.moe/noise');
    expect(maxDiff(noisy.apply(x), noisy.apply(x))).toBe(0);
    expect(maxDiff(noisy.apply(x, { training: true }), noisy.apply(x, { training: true }))).toBeGreaterThan(1e-4);
    model.dispose();
    noisy.dispose();
  });
});
