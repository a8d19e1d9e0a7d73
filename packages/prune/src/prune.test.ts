import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, fit, isRsError, createOpRegistry, lenet300100, lenet5, charTransformer, type GraphDef, type UnitGroup } from '@rs/core';
import { maxAbsDiff } from '@rs/core/testing';
import { unitPositions } from '@rs/core/extend';
import { install } from '@rs/backend-cpu';
import { pruneUnits, pruneWeights, materialize, prunableParams } from './prune';
import { polynomialSparsity, gradualPruning, iterativeSchedule } from './schedule';
import { l1, l2, taylor, snip, createScoreRegistry, type ImportanceScore } from './scores';
import { groupUnitScores } from './group-scores';
import { pruneReport, formatReport } from './report';
import { findLotteryTicket } from './lottery';

beforeAll(async () => {
  await install();
});

/** Masks every weight that produces `units` of `group` (its `out` members), at the units' positions. */
function maskUnits(model: Model, group: UnitGroup, units: number[]): void {
  model.edit((tx) => {
    for (const member of group.params.filter((p) => p.role === 'out')) {
      const entry = tx.param(member.param);
      const shape = entry.value.shape;
      const keep = new Float32Array(shape[member.axis]).fill(1);
      for (const u of units) for (const p of unitPositions(member, u)) keep[p] = 0;
      const mask = tf.tidy(() => tf.mul(entry.mask ?? tf.ones(shape), tf.reshape(tf.tensor(keep), shape.map((d, a) => (a === member.axis ? d : 1)))));
      tx.setMask(member.param, mask);
      mask.dispose();
    }
  });
}

function structuredEqualsMasked(graph: GraphDef, groupId: string, x: tf.Tensor, fraction = 0.5): number {
  const pruned = Model.create(graph, { seed: 3 });
  const group = pruned.group(groupId);
  const { removed } = pruneUnits(pruned, { fraction, score: 'l1', groups: [groupId] });
  expect(removed[group.id].length).toBe(Math.floor(fraction * group.size));
  const masked = Model.create(graph, { seed: 3 });
  maskUnits(masked, masked.group(groupId), removed[group.id]);
  const diff = maxAbsDiff(pruned.apply(x), masked.apply(x));
  expect(pruned.counts().params).toBeLessThan(masked.counts().params);
  pruned.dispose();
  masked.dispose();
  return diff;
}

describe('structured pruning equals the masked model (1e-5)', () => {
  it('through a residual add', () => {
    const graph: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
      nodes: [
        { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
        { id: 'ra', op: 'relu', inputs: ['a'], attrs: {} },
        { id: 'h', op: 'dense', inputs: ['ra'], attrs: { units: 7 } },
        { id: 'rh', op: 'relu', inputs: ['h'], attrs: {} },
        { id: 'b', op: 'dense', inputs: ['rh'], attrs: { units: 8 } },
        { id: 'sum', op: 'add', inputs: ['ra', 'b'], attrs: {} },
        { id: 'out', op: 'dense', inputs: ['sum'], attrs: { units: 3 } },
      ],
      outputs: ['out'],
    };
    const x = tf.randomNormal([4, 6], 0, 1, 'float32', 1);
    expect(structuredEqualsMasked(graph, 'a', x)).toBeLessThanOrEqual(1e-5);
    expect(structuredEqualsMasked(graph, 'h', x)).toBeLessThanOrEqual(1e-5);
  });

  it('through a concat', () => {
    const graph: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 5], dtype: 'float32' }],
      nodes: [
        { id: 'p', op: 'dense', inputs: ['x'], attrs: { units: 6 } },
        { id: 'rp', op: 'relu', inputs: ['p'], attrs: {} },
        { id: 'q', op: 'dense', inputs: ['x'], attrs: { units: 4 } },
        { id: 'rq', op: 'tanh', inputs: ['q'], attrs: {} },
        { id: 'cat', op: 'concat', inputs: ['rp', 'rq'], attrs: {} },
        { id: 'out', op: 'dense', inputs: ['cat'], attrs: { units: 2 } },
      ],
      outputs: ['out'],
    };
    const x = tf.randomNormal([4, 5], 0, 1, 'float32', 2);
    expect(structuredEqualsMasked(graph, 'p', x)).toBeLessThanOrEqual(1e-5);
    expect(structuredEqualsMasked(graph, 'q', x)).toBeLessThanOrEqual(1e-5);
  });

  it('through conv -> flatten -> dense', () => {
    const x = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 3);
    const graph = lenet5({ filters: [4, 6], hidden: [10, 8] });
    expect(structuredEqualsMasked(graph, 'conv2', x)).toBeLessThanOrEqual(1e-5);
    expect(structuredEqualsMasked(graph, 'conv1', x)).toBeLessThanOrEqual(1e-5);
  });

  it('attention heads', () => {
    const graph = charTransformer({ vocabSize: 11, context: 6, dim: 16, heads: 4, layers: 1 });
    const x = tf.tensor2d([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]], [2, 6], 'int32');
    // Masking a head's q, k and v weights zeroes its output (uniform attention over zero
    // values), which is what removing the head does.
    const pruned = Model.create(graph, { seed: 3 });
    const { removed } = pruneUnits(pruned, { fraction: 0.5, score: 'l2', groups: ['block0.attn:heads'] });
    expect(removed['block0.attn:heads']).toHaveLength(2);
    expect(pruned.graph.nodes.find((n) => n.id === 'block0.attn')?.attrs.numHeads).toBe(2);
    const masked = Model.create(graph, { seed: 3 });
    maskUnits(masked, masked.group('block0.attn:heads'), removed['block0.attn:heads']);
    expect(maxAbsDiff(pruned.apply(x), masked.apply(x))).toBeLessThanOrEqual(1e-5);
    // materialize finds the same heads dead and removes them: the same function again.
    const before = masked.apply(x);
    expect(materialize(masked).removed).toEqual({ 'block0.attn:heads': removed['block0.attn:heads'] });
    expect(maxAbsDiff(before, masked.apply(x))).toBeLessThanOrEqual(1e-5);
    expect(masked.counts().params).toBe(pruned.counts().params);
    tf.dispose([x, before]);
    pruned.dispose();
    masked.dispose();
  });
});

describe('scores', () => {
  const tiny = (): Model => {
    const model = Model.create(lenet300100({ inputs: 3, hidden: [2, 2], classes: 2 }), { seed: 1 });
    model.edit((tx) => {
      tx.setParam('fc1/kernel', tf.tensor2d([[1, -2], [0.5, 0], [-3, 1]]));
      tx.setParam('fc1/bias', tf.tensor1d([0.1, -0.2]));
    });
    return model;
  };

  it('magnitude scores are |w| and w^2; group scores sum over every coupled parameter', () => {
    const model = tiny();
    const w1 = l1.weights(model, ['fc1/kernel'], {});
    expect(w1.get('fc1/kernel')?.arraySync()).toEqual([[1, 2], [0.5, 0], [3, 1]]);
    const w2 = l2.weights(model, ['fc1/kernel'], {});
    expect(w2.get('fc1/kernel')?.arraySync()).toEqual([[1, 4], [0.25, 0], [9, 1]]);
    tf.dispose([...w1.values(), ...w2.values()]);
    const group = model.group('fc1');
    const scores = groupUnitScores(model, [group], l1, {}).get('fc1') as Float64Array;
    const fc2 = model.param('fc2/kernel').value.arraySync() as number[][];
    // Unit 0: |column 0 of fc1/kernel| + |bias 0| + |row 0 of fc2/kernel|.
    expect(scores[0]).toBeCloseTo(1 + 0.5 + 3 + 0.1 + Math.abs(fc2[0][0]) + Math.abs(fc2[0][1]), 5);
    model.dispose();
  });

  it('Taylor is |w * dL/dw| summed over batches, SNIP the same on one batch normalised to 1', () => {
    const model = tiny();
    const x = tf.tensor2d([[1, 2, 3], [-1, 0, 2]]);
    const y = tf.tensor1d([0, 1], 'int32');
    const context = { batches: [{ x, y }, { x, y }] };
    const t = taylor.weights(model, ['fc3/kernel'], context).get('fc3/kernel') as tf.Tensor;
    const s = snip.weights(model, ['fc3/kernel'], context).get('fc3/kernel') as tf.Tensor;
    // Twice the same batch: Taylor is twice SNIP's numerator.
    const single = taylor.weights(model, ['fc3/kernel'], { batches: [{ x, y }] }).get('fc3/kernel') as tf.Tensor;
    expect(maxAbsDiff(t, tf.mul(single, 2))).toBeLessThan(1e-6);
    expect(tf.sum(s).dataSync()[0]).toBeCloseTo(1, 5);
    expect(() => taylor.weights(model, ['fc3/kernel'], {})).toThrow(/needs data/);
    tf.dispose([t, s, single, x, y]);
    model.dispose();
  });

  it('third parties register scores; unknown names are typed errors', () => {
    const constant: ImportanceScore = { name: 'constant', needsData: false, weights: (m, ps) => new Map(ps.map((k) => [k, tf.onesLike(m.param(k).value)])) };
    const registry = createScoreRegistry().register(constant);
    const model = Model.create(lenet300100({ inputs: 4, hidden: [3, 3], classes: 2 }), { seed: 2 });
    pruneWeights(model, { sparsity: 0.5, score: 'constant', scores: registry, scope: 'layer' });
    expect(model.counts().nonzeroParams).toBeLessThan(model.counts().params);
    expect(() => pruneWeights(model, { sparsity: 0.5, score: 'nope' })).toThrow(/Unknown score 'nope'/);
    expect(() => registry.register(constant)).toThrow(/already registered/);
    model.dispose();
  });
});

describe("scores provided through the registry (extension point 'score')", () => {
  // Ranks every weight by its row index: the units fed by the first inputs matter least.
  const byRow: ImportanceScore = {
    name: 'byRow',
    needsData: false,
    weights: (m, ps) => new Map(ps.map((k) => [k, tf.tidy(() => tf.add(tf.zerosLike(m.param(k).value), tf.reshape(tf.range(1, m.param(k).value.shape[0] + 1), [-1, ...m.param(k).value.shape.slice(1).map(() => 1)])))])),
  };

  it("a name unknown to prune's registry is found among the model registry's provided scores", () => {
    const registry = createOpRegistry().provide('score', 'byRow', byRow);
    const model = Model.create(lenet300100({ inputs: 4, hidden: [6, 5], classes: 2 }), { seed: 3, registry });
    const expected = Model.create(lenet300100({ inputs: 4, hidden: [6, 5], classes: 2 }), { seed: 3 });
    pruneUnits(model, { fraction: 0.5, score: 'byRow', groups: ['fc1'] });
    pruneUnits(expected, { fraction: 0.5, score: byRow, groups: ['fc1'] });
    expect(model.group('fc1').size).toBe(3);
    expect(model.journal.at(-1)?.reason).toMatch(/^byRow /);
    expect(maxAbsDiff(model.param('fc1/kernel').value, expected.param('fc1/kernel').value)).toBe(0);
    pruneWeights(model, { sparsity: 0.5, score: 'byRow', scope: 'layer' });
    expect(model.counts().nonzeroParams).toBeLessThan(model.counts().params);
    model.dispose();
    expected.dispose();
  });

  it("prune's own registry wins over a provided score of the same name; unknown names list both", () => {
    const fake: ImportanceScore = { name: 'l1', needsData: false, weights: () => { throw new Error('the provided l1 must not run'); } };
    const registry = createOpRegistry().provide('score', 'l1', fake).provide('score', 'byRow', byRow);
    const model = Model.create(lenet300100({ inputs: 4, hidden: [3, 3], classes: 2 }), { seed: 2, registry });
    pruneWeights(model, { sparsity: 0.5, score: 'l1', scope: 'layer' });
    expect(() => pruneWeights(model, { sparsity: 0.5, score: 'nope' })).toThrow(/Unknown score 'nope'\. Registered: .*random, byRow\./);
    model.dispose();
  });

  it('a provided value that is not a score, or a provided score that needs data, is a typed error and changes nothing', () => {
    const registry = createOpRegistry()
      .provide('score', 'broken', { name: 'broken', needsData: false } as unknown as ImportanceScore)
      .provide('score', 'dataful', { ...byRow, name: 'dataful', needsData: true });
    const model = Model.create(lenet300100({ inputs: 4, hidden: [3, 3], classes: 2 }), { seed: 2, registry });
    const before = model.journal.length;
    expect(() => pruneUnits(model, { fraction: 0.5, score: 'broken' })).toThrow(/provided as 'broken'.*no weights/);
    expect(() => pruneUnits(model, { fraction: 0.5, score: 'dataful' })).toThrow(/needs data/);
    expect(model.journal.length).toBe(before);
    model.dispose();
  });
});

describe('scope, schedules and errors', () => {
  it('layer scope hits the sparsity per layer; global respects the per-layer minimum', () => {
    const model = Model.create(lenet300100({ hidden: [30, 10] }), { seed: 4 });
    const layer = pruneWeights(model, { sparsity: 0.8, scope: 'layer' });
    for (const key of prunableParams(model)) expect(layer.sparsity[key]).toBeCloseTo(0.8, 2);
    const other = Model.create(lenet300100({ hidden: [30, 10] }), { seed: 4 });
    // Scale fc3 down so a global ranking would wipe it out, were it not for minKeep.
    other.edit((tx) => tx.setParam('fc3/kernel', tf.mul(tx.param('fc3/kernel').value, 1e-4)));
    const global = pruneWeights(other, { sparsity: 0.9, scope: 'global', minKeep: 0.05 });
    expect(global.sparsity['fc3/kernel']).toBeCloseTo(0.95, 2);
    const total = prunableParams(other).reduce((n, k) => n + other.param(k).value.size, 0);
    const zeros = prunableParams(other).reduce((n, k) => n + global.sparsity[k] * other.param(k).value.size, 0);
    expect(zeros / total).toBeCloseTo(0.9, 3);
    model.dispose();
    other.dispose();
  });

  it('the gradual schedule matches the polynomial formula at every step', () => {
    const o = { initialSparsity: 0.1, finalSparsity: 0.85, beginStep: 20, endStep: 220, frequency: 10, power: 3 };
    const at = polynomialSparsity(o);
    for (let step = 0; step <= 300; step++) {
      const expected =
        step < o.beginStep || step > o.endStep || ((step - o.beginStep) % o.frequency !== 0 && step !== o.endStep)
          ? null
          : o.finalSparsity + (o.initialSparsity - o.finalSparsity) * (1 - (step - o.beginStep) / (o.endStep - o.beginStep)) ** 3;
      if (expected === null) expect(at(step)).toBeNull();
      else expect(at(step)).toBeCloseTo(expected, 12);
    }
    expect(iterativeSchedule(0.9, 2)[1]).toBeCloseTo(0.9, 12);
  });

  it('gradual pruning as a fit callback reaches the final sparsity, keeps pruned weights at zero, leaks nothing', async () => {
    const model = Model.create(lenet300100({ inputs: 20, hidden: [16, 8], classes: 2 }), { seed: 5 });
    const x = tf.randomNormal([64, 20], 0, 1, 'float32', 5);
    const y = tf.reshape(tf.cast(tf.greater(tf.slice(x, [0, 0], [-1, 1]), 0), 'int32'), [64]);
    const callback = gradualPruning({ schedule: { initialSparsity: 0, finalSparsity: 0.75, beginStep: 4, endStep: 24, frequency: 4 }, scope: 'layer' });
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 8 });
    const live = tf.memory().numTensors;
    await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 4, batchSize: 8, callbacks: [callback] });
    expect(callback.history.map((h) => h.step)).toEqual([4, 8, 12, 16, 20, 24]);
    // Masks were added once (3 kernels); nothing else stays alive.
    expect(tf.memory().numTensors).toBe(live + 3);
    const report = pruneReport(model);
    for (const key of prunableParams(model)) {
      const mask = model.param(key).mask as tf.Tensor;
      expect(tf.tidy(() => tf.sum(tf.abs(tf.mul(model.param(key).value, tf.sub(1, mask)))).dataSync()[0])).toBe(0);
    }
    expect(report.layers.find((l) => l.node === 'fc1')?.sparsity).toBeCloseTo(0.75 * (320 / 336), 2);
    expect(formatReport(report)).toContain('fc1');
    tf.dispose([x, y]);
    model.dispose();
  });

  it('bad input gives typed errors and leaves the model unchanged', () => {
    const model = Model.create(lenet300100({ hidden: [6, 4] }), { seed: 6 });
    const before = JSON.stringify(model.graph);
    const tensors = tf.memory().numTensors;
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isRsError(e) ? e.code : String(e);
      }
      return 'no error';
    };
    expect(code(() => pruneWeights(model, { sparsity: 1 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => pruneWeights(model, { sparsity: -0.1 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => pruneUnits(model, { fraction: 1.2 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => pruneWeights(model, { sparsity: 0.5, scope: 'everywhere' as never }))).toBe('INVALID_ARGUMENT');
    expect(code(() => pruneUnits(model, { fraction: 0.5, score: 'magic' }))).toBe('INVALID_ARGUMENT');
    expect(code(() => pruneUnits(model, { fraction: 0.5, groups: ['fc3'] }))).toBe('FROZEN_GROUP');
    expect(code(() => model.edit((tx) => tx.removeUnits('fc1', [0, 1, 2, 3, 4, 5])))).toBe('REMOVE_ALL_UNITS');
    expect(JSON.stringify(model.graph)).toBe(before);
    expect(model.journal).toHaveLength(0);
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });

  it('materialize turns masks that zero whole units into physical removal', () => {
    const graph = lenet300100({ inputs: 5, hidden: [6, 4], classes: 2 });
    const model = Model.create(graph, { seed: 7 });
    maskUnits(model, model.group('fc1'), [1, 4]);
    const x = tf.randomNormal([3, 5], 0, 1, 'float32', 7);
    const before = model.apply(x);
    const { removed } = materialize(model);
    expect(removed).toEqual({ fc1: [1, 4] });
    expect(model.group('fc1').size).toBe(4);
    expect(maxAbsDiff(before, model.apply(x))).toBeLessThanOrEqual(1e-5);
    model.dispose();
  });

  it('lottery tickets: masks shrink by the per-layer rates and survivors rewind to their initial values', async () => {
    const create = (seed: number) => Model.create(lenet300100({ inputs: 10, hidden: [12, 8], classes: 2 }), { seed });
    const x = tf.randomNormal([32, 10], 0, 1, 'float32', 8);
    const y = tf.reshape(tf.cast(tf.greater(tf.slice(x, [0, 0], [-1, 1]), 0), 'int32'), [32]);
    const initial = create(0);
    // Every training run of the ticket starts from the initial weights under the current mask.
    const starts: { model: Model; distance: number }[] = [];
    const { rows, model } = await findLotteryTicket({
      create,
      train: async (m) => {
        const mask = m.param('fc1/kernel').mask;
        if (mask) starts.push({ model: m, distance: maxAbsDiff(m.param('fc1/kernel').value, tf.mul(initial.param('fc1/kernel').value, mask)) });
        await fit(m, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 2, batchSize: 8 });
      },
      evaluate: () => 1,
      rounds: 2,
      control: true,
    });
    const ticket = starts.filter((s) => s.model === model);
    expect(ticket.map((s) => s.distance)).toEqual([0, 0]);
    // The control starts from a fresh initialisation under the same mask.
    expect(starts.filter((s) => s.model !== model).every((s) => s.distance > 0)).toBe(true);
    expect(rows.map((r) => r.round)).toEqual([0, 1, 2]);
    expect(rows[2].remaining).toBeLessThan(rows[1].remaining);
    // Default rates (Frankle & Carbin): 20% of each hidden layer's remaining weights per round,
    // 10% of the output layer's (fc3 produces the graph output).
    const fc1 = model.param('fc1/kernel').mask as tf.Tensor;
    expect(tf.sum(fc1).dataSync()[0]).toBe(120 - Math.floor(0.2 * 120) - Math.floor(0.2 * (120 - 24)));
    const fc3 = model.param('fc3/kernel').mask as tf.Tensor;
    expect(tf.sum(fc3).dataSync()[0]).toBe(16 - 1 - 1);
    expect(rows[1].controlAccuracy).toBe(1);
    expect(model.journal.filter((e) => e.technique === 'prune')).toHaveLength(2);
    initial.dispose();
    model.dispose();
    tf.dispose([x, y]);
  });
});
