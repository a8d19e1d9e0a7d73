import { describe, it, expect, beforeAll } from 'vitest';
import { Model, charTransformer, lenet300100, tf, softmaxCrossEntropy, isRsError, type Tensor, type UnitGroup } from '@rs/core';
import { unitPositions } from '@rs/core/extend';
import { install } from '@rs/backend-cpu';
import { defaultScores, gateImportance, groupUnitScores, pruneUnits, pruneWeights, taylorGroup, type ImportanceScore } from './index';

beforeAll(async () => {
  await install();
});

/** The loss on `batch` of a copy of `model` whose readers of unit `u` of `group` are scaled by `factor` (a gate at `factor`). */
function gatedLoss(model: Model, group: UnitGroup, u: number, factor: number, batch: { x: Tensor; y: Tensor }): number {
  const params: Record<string, Tensor> = {};
  for (const k of model.paramKeys()) params[k] = model.param(k).value;
  for (const member of group.params.filter((m) => m.role === 'in')) {
    const w = model.param(member.param).value;
    const scale = new Float32Array(w.shape[member.axis] as number).fill(1);
    for (const p of unitPositions(member, u)) scale[p] = factor;
    const shape = w.shape.map((d, a) => (a === member.axis ? d : 1));
    params[member.param] = tf.tidy(() => tf.mul(w, tf.tensor(scale, shape)));
  }
  const copy = Model.create(model.graph, { params, seed: 0 });
  const loss = tf.tidy(() => softmaxCrossEntropy(copy.apply(batch.x), batch.y).dataSync()[0]);
  for (const member of group.params.filter((m) => m.role === 'in')) params[member.param].dispose();
  copy.dispose();
  return loss;
}

/** Checks each unit's gate importance on one batch against |central finite difference| of the gate. */
function checkAgainstGates(model: Model, group: UnitGroup, batch: { x: Tensor; y: Tensor }): void {
  const scores = gateImportance(model, [group], { batches: [batch] }).get(group.id) as Float64Array;
  const eps = 0.05;
  const fd = Array.from({ length: group.size }, (_, u) => Math.abs((gatedLoss(model, group, u, 1 + eps, batch) - gatedLoss(model, group, u, 1 - eps, batch)) / (2 * eps)));
  const scale = Math.max(...fd);
  expect(scale).toBeGreaterThan(1e-4);
  for (let u = 0; u < group.size; u++) expect(Math.abs(scores[u] - fd[u])).toBeLessThan(0.03 * scale + 1e-5);
}

describe('gateImportance', () => {
  it('is |dL/d gate| of each attention head and each dense unit (against finite differences of the gate), the mean over batches, and leaks nothing', () => {
    const transformer = Model.create(charTransformer({ vocabSize: 12, context: 8, dim: 16, heads: 4, layers: 1 }), { seed: 3 });
    const tokens = (seed: number) => tf.tidy(() => tf.cast(tf.mul(tf.randomUniform([6, 8], 0, 1, 'float32', seed), 11.99), 'int32'));
    const b1 = { x: tokens(1), y: tokens(2) };
    const b2 = { x: tokens(3), y: tokens(4) };
    const heads = transformer.groups().find((g) => g.id.endsWith(':heads')) as UnitGroup;
    const live = tf.memory().numTensors;
    checkAgainstGates(transformer, heads, b1);
    // Two batches: the mean of the per-batch absolute values (not the absolute value of the mean).
    const one = gateImportance(transformer, [heads], { batches: [b1] }).get(heads.id) as Float64Array;
    const two = gateImportance(transformer, [heads], { batches: [b2] }).get(heads.id) as Float64Array;
    const both = gateImportance(transformer, [heads], { batches: [b1, b2] }).get(heads.id) as Float64Array;
    both.forEach((v, u) => expect(v).toBeCloseTo((one[u] + two[u]) / 2, 10));
    // taylorGroup sums over q, k and v too: not the gate.
    const group = groupUnitScores(transformer, [heads], taylorGroup, { batches: [b1] }).get(heads.id) as Float64Array;
    expect(Array.from(group).some((v, u) => Math.abs(v - one[u]) > 1e-6)).toBe(true);
    expect(tf.memory().numTensors).toBe(live);
    tf.dispose([b1.x, b1.y, b2.x, b2.y]);
    transformer.dispose();

    const mlp = Model.create(lenet300100({ inputs: 6, hidden: [8, 5], classes: 3 }), { seed: 1 });
    const batch = { x: tf.randomNormal([16, 6], 0, 1, 'float32', 5), y: tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 3), 'int32') };
    checkAgainstGates(mlp, mlp.group('fc1'), batch);
    tf.dispose([batch.x, batch.y]);
    mlp.dispose();
  });

  it('refuses a group with no reader weights and a call without data, with typed errors', () => {
    const mlp = Model.create(lenet300100({ inputs: 6, hidden: [8, 5], classes: 3 }), { seed: 1 });
    const fc1 = mlp.group('fc1');
    const batch = { x: tf.randomNormal([4, 6]), y: tf.tensor1d([0, 1, 2, 0], 'int32') };
    const live = tf.memory().numTensors;
    const errorOf = (f: () => unknown): unknown => {
      try {
        f();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const noReaders = { ...fc1, params: fc1.params.filter((m) => m.role !== 'in') };
    expect(isRsError(errorOf(() => gateImportance(mlp, [noReaders], { batches: [batch] })), 'INVALID_ARGUMENT')).toBe(true);
    expect(isRsError(errorOf(() => gateImportance(mlp, [fc1], {})), 'INVALID_ARGUMENT')).toBe(true);
    expect(tf.memory().numTensors).toBe(live);
    tf.dispose([batch.x, batch.y]);
    mlp.dispose();
  });

  it("is the registered unit score 'gate': pruneUnits removes the lowest-gate heads; pruneWeights refuses it; a unit score's result is checked", () => {
    expect(defaultScores.names()).toContain('gate');
    const model = Model.create(charTransformer({ vocabSize: 12, context: 8, dim: 16, heads: 4, layers: 1 }), { seed: 3 });
    const batch = { x: tf.tidy(() => tf.cast(tf.mul(tf.randomUniform([6, 8], 0, 1, 'float32', 7), 11.99), 'int32')), y: tf.tidy(() => tf.cast(tf.mul(tf.randomUniform([6, 8], 0, 1, 'float32', 8), 11.99), 'int32')) };
    const heads = model.groups().find((g) => g.id.endsWith(':heads')) as UnitGroup;
    const scores = Array.from(gateImportance(model, [heads], { batches: [batch] }).get(heads.id) as Float64Array);
    const lowest = scores.map((v, u) => [v, u] as const).sort((a, b) => a[0] - b[0]).slice(0, 2).map(([, u]) => u).sort((a, b) => a - b);
    const { removed } = pruneUnits(model, { fraction: 0.5, score: 'gate', groups: [heads.id], context: { batches: [batch] } });
    expect(removed[heads.id]).toEqual(lowest);
    expect(model.group(heads.id).size).toBe(2);
    expect(model.journal.at(-1)?.details).toMatchObject({ score: 'gate' });
    const params = model.counts().params;
    let error: unknown;
    try {
      pruneWeights(model, { sparsity: 0.5, score: 'gate', context: { batches: [batch] } });
    } catch (e) {
      error = e;
    }
    expect(isRsError(error, 'INVALID_ARGUMENT') && (error as Error).message).toMatch(/scores whole units/);
    expect(model.counts().params).toBe(params);
    // A third-party unit score that returns the wrong number of values is refused before any edit.
    const short: ImportanceScore = { name: 'short', needsData: false, weights: () => new Map(), units: (_m, groups) => new Map(groups.map((g) => [g.id, new Float64Array(g.size - 1)])) };
    error = undefined;
    try {
      pruneUnits(model, { fraction: 0.5, score: short, groups: [heads.id] });
    } catch (e) {
      error = e;
    }
    expect(isRsError(error, 'INVALID_ARGUMENT') && (error as Error).message).toMatch(/returned 1 value\(s\) for unit group/);
    expect(model.group(heads.id).size).toBe(2);
    tf.dispose([batch.x, batch.y]);
    model.dispose();
  });
});
