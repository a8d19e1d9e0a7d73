import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, createOpRegistry, type GraphDef } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { registerMoe, addExpert, type MoeAttrs } from '@rs/moe';
import { onnxSupport } from './index';
import { compareWithOrt, randomInput, TOLERANCE } from './test-harness';

beforeAll(async () => {
  await install();
});

const registry = registerMoe(createOpRegistry());

function moeGraph(attrs: Partial<MoeAttrs>, shape: (number | null)[] = [null, 6]): GraphDef {
  return {
    inputs: [{ id: 'x', shape, dtype: 'float32' }],
    nodes: [{ id: 'moe', op: 'moe', inputs: ['x'], attrs: { experts: 4, hidden: 8, ...attrs } }],
    outputs: ['moe'],
  };
}

/** A model with a decisive random router and non-zero biases; returns the model and its fraction of dropped assignments on `x`. */
function build(attrs: Partial<MoeAttrs>, x: tf.Tensor, shape?: (number | null)[]): { model: Model; dropped: number } {
  const experts = attrs.experts ?? 4;
  const d = x.shape[x.shape.length - 1];
  const model = Model.create(moeGraph(attrs, shape), {
    registry,
    seed: 2,
    params: {
      'moe/router': tf.randomNormal([d, experts], 0, 1, 'float32', 5),
      'moe/routerBias': tf.randomNormal([experts], 0, 0.3, 'float32', 6),
      'moe/b1': tf.randomNormal([experts, attrs.hidden ?? 8], 0, 0.3, 'float32', 7),
      'moe/b2': tf.randomNormal([experts, attrs.units ?? d], 0, 0.3, 'float32', 8),
    },
  });
  const run = model.run(x);
  const dropped = (run.metrics.get('moe/dropped') as tf.Tensor).dataSync()[0];
  tf.dispose([...run.outputs, ...run.metrics.values(), ...run.losses.values()]);
  return { model, dropped };
}

async function exact(attrs: Partial<MoeAttrs>, x: tf.Tensor, shape?: (number | null)[]): Promise<{ diff: number; dropped: number }> {
  const { model, dropped } = build(attrs, x, shape);
  try {
    expect(onnxSupport(model).supported).toBe(true);
    const result = await compareWithOrt(model, [x]);
    expect(result.maxAbs).toBeGreaterThan(1e-2);
    return { diff: result.maxDiff, dropped };
  } finally {
    model.dispose();
  }
}

describe('moe exported densely, exact at inference (capacity drops included)', () => {
  const x = () => randomInput([24, 6], 3, 2);

  it('switch (top-1): with the default capacity, and with a tight one that drops tokens', async () => {
    const input = x();
    expect((await exact({ routing: 'switch' }, input)).diff).toBeLessThanOrEqual(TOLERANCE);
    const tight = await exact({ routing: 'switch', evalCapacityFactor: 0.5 }, input);
    expect(tight.dropped).toBeGreaterThan(0);
    expect(tight.diff).toBeLessThanOrEqual(TOLERANCE);
    input.dispose();
  });

  it('top2 and topk (k = 3): renormalised gates, second choices queue after every first choice', async () => {
    const input = x();
    for (const attrs of [{ routing: 'top2' as const }, { routing: 'top2' as const, evalCapacityFactor: 0.75 }, { routing: 'topk' as const, k: 3, evalCapacityFactor: 0.6, activation: 'gelu' as const }]) {
      const result = await exact(attrs, input);
      if (attrs.evalCapacityFactor) expect(result.dropped).toBeGreaterThan(0);
      expect(result.diff, JSON.stringify(attrs)).toBeLessThanOrEqual(TOLERANCE);
    }
    input.dispose();
  });

  it('expert choice (each expert takes its most probable tokens) and dropless', async () => {
    const input = x();
    const ec = await exact({ routing: 'expertChoice', evalCapacityFactor: 0.5 }, input);
    expect(ec.dropped).toBeGreaterThan(0);
    expect(ec.diff).toBeLessThanOrEqual(TOLERANCE);
    expect((await exact({ routing: 'expertChoice', dropless: true }, input)).diff).toBeLessThanOrEqual(TOLERANCE);
    expect((await exact({ routing: 'switch', dropless: true }, input)).diff).toBeLessThanOrEqual(TOLERANCE);
    input.dispose();
  });

  it('rank-3 input (tokens of a sequence) with a different output width', async () => {
    const input = randomInput([3, 5, 6], 4, 2);
    const result = await exact({ routing: 'top2', units: 3, evalCapacityFactor: 1 }, input, [null, 5, 6]);
    expect(result.diff).toBeLessThanOrEqual(TOLERANCE);
    input.dispose();
  });

  it('a split expert (gate offsets of -log 2) keeps the exact form', async () => {
    const input = x();
    const { model } = build({ routing: 'switch' }, input);
    addExpert(model, 'moe', { copyOf: 0 });
    expect(model.param('moe/gateOffset').value.dataSync().some((v) => v !== 0)).toBe(true);
    const result = await compareWithOrt(model, [input]);
    expect(result.maxDiff).toBeLessThanOrEqual(TOLERANCE);
    model.dispose();
    input.dispose();
  });
});
