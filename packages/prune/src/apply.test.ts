import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, fit, isRsError, lenet300100, type GraphDef } from '@rs/core';
import { maxAbsDiff } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { pruneUnits, pruneWeights, removeUnits, materialize, prunableParams } from './prune';
import { pruneIteratively, gradualPruning, polynomialSparsity } from './schedule';
import { findLotteryTicket } from './lottery';
import { pruneReport } from './report';

beforeAll(async () => {
  await install();
});

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return isRsError(e) ? e.code : String(e);
  }
  return 'no error';
}

async function asyncCode(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (e) {
    return isRsError(e) ? e.code : String(e);
  }
  return 'no error';
}

/** Everything that must not change when an edit fails. */
function fingerprint(model: Model): string {
  const values = model.paramKeys().map((k) => [k, Array.from(model.param(k).value.dataSync()), model.param(k).mask ? Array.from((model.param(k).mask as tf.Tensor).dataSync()) : null]);
  return JSON.stringify({ graph: model.graph, values, journal: model.journal.length });
}

describe('errors are typed and leave the model unchanged', () => {
  it('bad sparsity, scope, score, minimum, group, data; pruning every unit; a failure half-way through an edit', () => {
    const model = Model.create(lenet300100({ inputs: 8, hidden: [6, 4], classes: 3 }), { seed: 6 });
    pruneWeights(model, { sparsity: 0.3, scope: 'layer' });
    const before = fingerprint(model);
    const tensors = tf.memory().numTensors;
    const cases: [string, () => unknown][] = [
      ['INVALID_ARGUMENT', () => pruneWeights(model, { sparsity: 1 })],
      ['INVALID_ARGUMENT', () => pruneWeights(model, { sparsity: Number.NaN })],
      ['INVALID_ARGUMENT', () => pruneWeights(model, { sparsity: 0.5, scope: 'global', sparsityPerParam: { 'fc3/kernel': 0.1 } })],
      ['INVALID_ARGUMENT', () => pruneWeights(model, { sparsity: 0.5, minKeep: -1 })],
      ['INVALID_ARGUMENT', () => pruneWeights(model, { sparsity: 0.5, score: 'taylor' })],
      ['INVALID_ARGUMENT', () => pruneWeights(model, { sparsity: 0.5, scope: 'layer', sparsityPerParam: { 'fc1/bias': 0.5 } })],
      ['UNKNOWN_PARAM', () => pruneWeights(model, { sparsity: 0.5, params: ['fc9/kernel'] })],
      ['INVALID_ARGUMENT', () => pruneUnits(model, { fraction: 1 })],
      ['INVALID_ARGUMENT', () => pruneUnits(model, { fraction: 0.5, scope: 'row' as never })],
      ['INVALID_ARGUMENT', () => pruneUnits(model, { fraction: 0.5, score: 'snip' })],
      ['UNKNOWN_GROUP', () => pruneUnits(model, { fraction: 0.5, groups: ['fc9'] })],
      ['REMOVE_ALL_UNITS', () => removeUnits(model, { fc1: [0, 1, 2, 3, 4, 5] })],
      ['UNIT_INDEX_OUT_OF_RANGE', () => removeUnits(model, { fc1: [6] })],
      // fc1 is edited first in the draft, then fc2 fails: nothing of the edit remains.
      ['REMOVE_ALL_UNITS', () => removeUnits(model, { fc1: [0], fc2: [0, 1, 2, 3] })],
      ['FROZEN_GROUP', () => removeUnits(model, { fc3: [0] })],
    ];
    for (const [expected, f] of cases) expect(code(f)).toBe(expected);
    expect(fingerprint(model)).toBe(before);
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });

  it('schedule and lottery arguments are checked before anything runs', async () => {
    expect(code(() => polynomialSparsity({ initialSparsity: 0, finalSparsity: 1, beginStep: 0, endStep: 10 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => polynomialSparsity({ initialSparsity: 0, finalSparsity: 0.5, beginStep: 10, endStep: 10 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => gradualPruning({ schedule: { initialSparsity: 0, finalSparsity: 0.5, beginStep: 0, endStep: 10, frequency: 0 } }))).toBe('INVALID_ARGUMENT');
    let created = 0;
    const create = () => (created++, Model.create(lenet300100({ inputs: 4, hidden: [3, 3], classes: 2 })));
    const train = async () => undefined;
    expect(await asyncCode(() => findLotteryTicket({ create, train, evaluate: () => 0, rounds: 0 }))).toBe('INVALID_ARGUMENT');
    expect(await asyncCode(() => findLotteryTicket({ create, train, evaluate: () => 0, rounds: 2, rate: 1 }))).toBe('INVALID_ARGUMENT');
    expect(created).toBe(0);
  });
});

describe('scope and minimums', () => {
  it('minKeep as a count keeps that many weights in every layer under a global ranking', () => {
    const model = Model.create(lenet300100({ inputs: 20, hidden: [10, 6], classes: 2 }), { seed: 1 });
    // Make fc3 negligible so a global ranking would take all of it.
    model.edit((tx) => tx.setParam('fc3/kernel', tf.mul(tx.param('fc3/kernel').value, 1e-6)));
    const { sparsity } = pruneWeights(model, { sparsity: 0.8, scope: 'global', minKeep: 3 });
    expect(Math.round((1 - sparsity['fc3/kernel']) * 12)).toBe(3);
    const total = prunableParams(model).reduce((n, k) => n + model.param(k).value.size, 0);
    const zeros = prunableParams(model).reduce((n, k) => n + Math.round(sparsity[k] * model.param(k).value.size), 0);
    expect(zeros).toBe(Math.floor(0.8 * total));
    model.dispose();
  });

  it('structured: layer scope removes the fraction of each group; global ranks all units and keeps minUnits per group', () => {
    const layer = Model.create(lenet300100({ inputs: 12, hidden: [20, 10], classes: 3 }), { seed: 2 });
    const a = pruneUnits(layer, { fraction: 0.5, scope: 'layer' });
    expect(a.removed.fc1).toHaveLength(10);
    expect(a.removed.fc2).toHaveLength(5);
    expect([layer.group('fc1').size, layer.group('fc2').size]).toEqual([10, 5]);
    const global = Model.create(lenet300100({ inputs: 12, hidden: [20, 10], classes: 3 }), { seed: 2 });
    // Global scores are divided by their group's mean (Torch-Pruning's mean normaliser), so
    // make 8 of fc2's 10 units negligible next to the other two: a global ranking would take
    // all 8, the minimum of 30% (3 units) stops it at 7.
    const scale = tf.tensor1d([1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1, 1]);
    global.edit((tx) => {
      tx.setParam('fc2/kernel', tf.mul(tx.param('fc2/kernel').value, scale));
      tx.setParam('fc2/bias', tf.mul(tx.param('fc2/bias').value, scale));
      tx.setParam('fc3/kernel', tf.mul(tx.param('fc3/kernel').value, tf.reshape(scale, [10, 1])));
    });
    scale.dispose();
    const b = pruneUnits(global, { fraction: 0.5, scope: 'global', minUnits: 0.3 });
    expect((b.removed.fc1 ?? []).length + (b.removed.fc2 ?? []).length).toBe(15);
    expect(b.removed.fc2).toHaveLength(7);
    expect(b.removed.fc2.every((u) => u < 8)).toBe(true);
    expect(global.group('fc2').size).toBe(3);
    layer.dispose();
    global.dispose();
  });
});

describe('materialize', () => {
  const graph = (activation: string): GraphDef => ({
    inputs: [{ id: 'x', shape: [null, 5], dtype: 'float32' }],
    nodes: [
      { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 6 } },
      { id: 'act', op: activation, inputs: ['fc1'], attrs: {} },
      { id: 'fc2', op: 'dense', inputs: ['act'], attrs: { units: 2 } },
    ],
    outputs: ['fc2'],
  });
  const maskColumns = (model: Model, units: number[], bias: boolean) =>
    model.edit((tx) => {
      const keep = [0, 1, 2, 3, 4, 5].map((u) => (units.includes(u) ? 0 : 1));
      tx.setMask('fc1/kernel', tf.tidy(() => tf.mul(tf.ones([5, 6]), tf.tensor2d([keep]))));
      if (bias) tx.setMask('fc1/bias', tf.tensor1d(keep));
    });

  it('removes units whose kernel columns and bias are masked (exact); with ignoreBias, also those with a live bias', () => {
    const model = Model.create(graph('relu'), { seed: 3 });
    model.edit((tx) => tx.setParam('fc1/bias', tf.fill([6], 0.5)));
    maskColumns(model, [1, 4], false);
    expect(materialize(model).removed).toEqual({});
    const result = materialize(model, { ignoreBias: true });
    expect(result.removed).toEqual({ fc1: [1, 4] });
    expect(model.journal.at(-1)?.technique).toBe('prune');
    model.dispose();
  });

  it('with a probe and ignoreBias, removes exactly the input-less units whose ReLU output is 0 (negative bias)', () => {
    const model = Model.create(graph('relu'), { seed: 3 });
    model.edit((tx) => tx.setParam('fc1/bias', tf.tensor1d([0.5, -0.5, 0.5, -0.2, 0.5, 0.5])));
    maskColumns(model, [1, 2, 3], false);
    const x = tf.randomNormal([4, 5], 0, 1, 'float32', 4);
    const before = model.apply(x);
    const result = materialize(model, { probe: x, ignoreBias: true });
    expect(result.removed).toEqual({ fc1: [1, 3] });
    expect(result.skipped).toEqual([expect.objectContaining({ group: 'fc1', units: 1 })]);
    expect(maxAbsDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-6);
    tf.dispose([x, before]);
    model.dispose();
  });

  it('a probe catches ops that map zero to non-zero (sigmoid) and keeps those units', () => {
    const x = tf.randomNormal([4, 5], 0, 1, 'float32', 3);
    const relu = Model.create(graph('relu'), { seed: 3 });
    maskColumns(relu, [0, 2], true);
    const before = relu.apply(x);
    expect(materialize(relu, { probe: x }).removed).toEqual({ fc1: [0, 2] });
    expect(maxAbsDiff(before, relu.apply(x))).toBeLessThanOrEqual(1e-5);
    const sigmoid = Model.create(graph('sigmoid'), { seed: 3 });
    maskColumns(sigmoid, [0, 2], true);
    const result = materialize(sigmoid, { probe: x });
    expect(result.removed).toEqual({});
    expect(result.skipped[0]).toMatchObject({ group: 'fc1', units: 2 });
    tf.dispose([x, before]);
    relu.dispose();
    sigmoid.dispose();
  });

  it('never removes every unit of a group', () => {
    const model = Model.create(graph('relu'), { seed: 3 });
    maskColumns(model, [0, 1, 2, 3, 4, 5], true);
    const result = materialize(model);
    expect(result.removed).toEqual({});
    expect(result.skipped[0]).toMatchObject({ group: 'fc1', units: 6 });
    model.dispose();
  });
});

describe('iterative pruning and memory', () => {
  it('pruneIteratively reaches the per-round targets and retrains after each round', async () => {
    const model = Model.create(lenet300100({ inputs: 10, hidden: [12, 8], classes: 2 }), { seed: 4 });
    const retrained: number[] = [];
    const rounds = await pruneIteratively(model, {
      finalSparsity: 0.875,
      finalSparsityPerParam: { 'fc3/kernel': 0.5 },
      rounds: 3,
      scope: 'layer',
      retrain: (_m, round) => void retrained.push(round),
    });
    expect(retrained).toEqual([0, 1, 2]);
    // 1 - (1 - 0.875)^(r/3) = 0.5, 0.75, 0.875.
    expect(rounds.map((r) => r.target)).toEqual([0.5, 0.75, 0.875].map((v) => expect.closeTo(v, 12)));
    expect(rounds[2].sparsity['fc1/kernel']).toBeCloseTo(0.875, 2);
    expect(rounds[2].sparsity['fc3/kernel']).toBeCloseTo(0.5, 1);
    expect(model.journal.filter((e) => e.technique === 'prune')).toHaveLength(3);
    model.dispose();
  });

  it('no tensors leak around scoring, pruning, materializing, training and reporting', async () => {
    const model = Model.create(lenet300100({ inputs: 10, hidden: [12, 8], classes: 2 }), { seed: 5 });
    const x = tf.randomNormal([32, 10], 0, 1, 'float32', 5);
    const y = tf.reshape(tf.cast(tf.greater(tf.slice(x, [0, 0], [-1, 1]), 0), 'int32'), [32]);
    const context = { batches: [{ x, y }] };
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 8 });
    pruneWeights(model, { sparsity: 0.5, score: 'taylor', context });
    pruneUnits(model, { fraction: 0.25, score: 'taylor', context });
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 8 });
    const live = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      pruneWeights(model, { sparsity: 0.6, score: 'snip', scope: 'global', context });
      pruneUnits(model, { fraction: 0.1, score: 'l2', scope: 'global' });
      materialize(model, { probe: x, ignoreBias: true });
      pruneReport(model, { input: x, repeats: 2 });
      await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 8 });
      if (i === 0) expect(tf.memory().numTensors).toBe(live);
    }
    expect(tf.memory().numTensors).toBe(live);
    const report = pruneReport(model, { input: x, repeats: 2 });
    expect(report.latencyMs).toBeGreaterThan(0);
    expect(report.latencyBatch).toBe(32);
    expect(report.steps).toBe(model.journal.filter((e) => e.technique === 'prune').length);
    tf.dispose([x, y]);
    model.dispose();
  });
});

describe('monotone sparsity', () => {
  it('weights already pruned stay pruned when a later call asks for less, in both scopes', () => {
    for (const scope of ['layer', 'global'] as const) {
      const model = Model.create(lenet300100({ inputs: 10, hidden: [8, 6], classes: 2 }), { seed: 9 });
      pruneWeights(model, { sparsity: 0.7, scope });
      const masks = prunableParams(model).map((k) => Array.from((model.param(k).mask as tf.Tensor).dataSync()));
      // Change the weights so the ranking changes, then ask for less sparsity.
      model.edit((tx) => {
        for (const k of prunableParams(model)) tx.setParam(k, tf.randomNormal(tx.param(k).value.shape, 0, 1, 'float32', 1));
      });
      pruneWeights(model, { sparsity: 0.3, scope });
      prunableParams(model).forEach((k, p) => {
        const now = (model.param(k).mask as tf.Tensor).dataSync();
        masks[p].forEach((m, i) => (m === 0 ? expect(now[i]).toBe(0) : undefined));
      });
      model.dispose();
    }
  });
});
