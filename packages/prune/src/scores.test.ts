import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, lenet300100, lenet5, charTransformer, type GraphDef } from '@rs/core';
import { maxAbsDiff } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { taylor, taylorGroup, snip, random, createScoreRegistry, type ImportanceScore } from './scores';
import { groupUnitScores } from './group-scores';

beforeAll(async () => {
  await install();
});

// One dense layer y = x W + b with loss mse = mean((y - t)^2): dL/dW = x^T (y - t) * 2 / (rows * 2),
// worked out by hand below, so Taylor and SNIP are checked against numbers, not against themselves.
const linear: GraphDef = {
  inputs: [{ id: 'x', shape: [null, 2], dtype: 'float32' }],
  nodes: [{ id: 'fc', op: 'dense', inputs: ['x'], attrs: { units: 2 } }],
  outputs: ['fc'],
};

function linearModel(): Model {
  const model = Model.create(linear, { seed: 0 });
  model.edit((tx) => {
    tx.setParam('fc/kernel', tf.tensor2d([[1, -2], [0.5, 3]]));
    tx.setParam('fc/bias', tf.tensor1d([0.1, -0.1]));
  });
  return model;
}

describe('scores on known tensors', () => {
  it('Taylor is |w * dL/dw| accumulated over batches; SNIP is the first batch, normalised to sum 1', () => {
    const model = linearModel();
    // Batch 1: x = [1, 2], t = [0, 1]: y = [2.1, 3.9], dL/dy = y - t = [2.1, 2.9],
    //   dL/dW = [[2.1, 2.9], [4.2, 5.8]], |W * dL/dW| = [[2.1, 5.8], [2.1, 17.4]].
    // Batch 2: x = [-1, 1], t = [1, 0]: y = [-0.4, 4.9], dL/dy = [-1.4, 4.9],
    //   dL/dW = [[1.4, -4.9], [-1.4, 4.9]], |W * dL/dW| = [[1.4, 9.8], [0.7, 14.7]].
    const batches = [
      { x: tf.tensor2d([[1, 2]]), y: tf.tensor2d([[0, 1]]) },
      { x: tf.tensor2d([[-1, 1]]), y: tf.tensor2d([[1, 0]]) },
    ];
    const t = taylor.weights(model, ['fc/kernel'], { batches, loss: 'mse' });
    const expectedTaylor = tf.tensor2d([[2.1 + 1.4, 5.8 + 9.8], [2.1 + 0.7, 17.4 + 14.7]]);
    expect(maxAbsDiff(t.get('fc/kernel') as tf.Tensor, expectedTaylor)).toBeLessThan(1e-5);
    const s = snip.weights(model, ['fc/kernel'], { batches, loss: 'mse' });
    const expectedSnip = tf.div(tf.tensor2d([[2.1, 5.8], [2.1, 17.4]]), 27.4);
    expect(maxAbsDiff(s.get('fc/kernel') as tf.Tensor, expectedSnip)).toBeLessThan(1e-6);
    tf.dispose([...t.values(), ...s.values(), expectedTaylor, expectedSnip, ...batches.flatMap((b) => [b.x, b.y])]);
    model.dispose();
  });

  it('masked weights score zero under Taylor (their gradient through the mask is zero)', () => {
    const model = linearModel();
    model.edit((tx) => tx.setMask('fc/kernel', tf.tensor2d([[1, 0], [1, 1]])));
    const batches = [{ x: tf.tensor2d([[1, 2]]), y: tf.tensor2d([[0, 1]]) }];
    const t = taylor.weights(model, ['fc/kernel'], { batches, loss: 'mse' });
    expect((t.get('fc/kernel') as tf.Tensor).arraySync()).toEqual([[expect.any(Number), 0], [expect.any(Number), expect.any(Number)]]);
    tf.dispose([...t.values(), batches[0].x, batches[0].y]);
    model.dispose();
  });

  it('random is seeded: the same seed gives the same scores, another seed others', () => {
    const model = linearModel();
    const a = random.weights(model, ['fc/kernel'], { seed: 7 }).get('fc/kernel') as tf.Tensor;
    const b = random.weights(model, ['fc/kernel'], { seed: 7 }).get('fc/kernel') as tf.Tensor;
    const c = random.weights(model, ['fc/kernel'], { seed: 8 }).get('fc/kernel') as tf.Tensor;
    expect(maxAbsDiff(a, b)).toBe(0);
    expect(maxAbsDiff(a, c)).toBeGreaterThan(0);
    tf.dispose([a, b, c]);
    model.dispose();
  });
});

describe('group scores aggregate over every coupled parameter (from core unit groups)', () => {
  // A third-party score that gives every weight 1: a unit's group score is then the number of
  // weights coupled to it, which we can count by hand for each kind of coupling.
  const ones: ImportanceScore = { name: 'ones', needsData: false, weights: (m, ps) => new Map(ps.map((k) => [k, tf.onesLike(m.param(k).value)])) };
  const registry = createScoreRegistry().register(ones);
  const count = (model: Model, id: string) => [...(groupUnitScores(model, [model.group(id)], registry.get('ones'), {}).get(model.group(id).id) as Float64Array)];

  it('dense -> dense: column, bias, next row', () => {
    const model = Model.create(lenet300100({ inputs: 3, hidden: [2, 4], classes: 2 }), { seed: 0 });
    expect(count(model, 'fc1')).toEqual([3 + 1 + 4, 3 + 1 + 4]);
    model.dispose();
  });

  it('residual add: both branches, and every reader of the sum', () => {
    const model = Model.create(
      {
        inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
        nodes: [
          { id: 'a', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
          { id: 'h', op: 'dense', inputs: ['a'], attrs: { units: 7 } },
          { id: 'b', op: 'dense', inputs: ['h'], attrs: { units: 8 } },
          { id: 'sum', op: 'add', inputs: ['a', 'b'], attrs: {} },
          { id: 'out', op: 'dense', inputs: ['sum'], attrs: { units: 3 } },
        ],
        outputs: ['out'],
      },
      { seed: 0 },
    );
    // a's column (6) + bias, h's row (7), b's column (7) + bias, out's row (3).
    expect(new Set(count(model, 'a'))).toEqual(new Set([6 + 1 + 7 + 7 + 1 + 3]));
    model.dispose();
  });

  it('concat: each part maps to its range of the reader', () => {
    const model = Model.create(
      {
        inputs: [{ id: 'x', shape: [null, 5], dtype: 'float32' }],
        nodes: [
          { id: 'p', op: 'dense', inputs: ['x'], attrs: { units: 6 } },
          { id: 'q', op: 'dense', inputs: ['x'], attrs: { units: 4 } },
          { id: 'cat', op: 'concat', inputs: ['p', 'q'], attrs: {} },
          { id: 'out', op: 'dense', inputs: ['cat'], attrs: { units: 2 } },
        ],
        outputs: ['out'],
      },
      { seed: 0 },
    );
    expect(new Set(count(model, 'q'))).toEqual(new Set([5 + 1 + 2]));
    model.dispose();
  });

  it('conv -> flatten -> dense: a channel owns its filter, bias and H*W rows of the dense kernel', () => {
    const model = Model.create(lenet5({ filters: [4, 6], hidden: [10, 8] }), { seed: 0 });
    // conv2: 5x5 valid on 14x14x4 -> 10x10x6, pool -> 5x5x6, flatten -> 150 features.
    expect(new Set(count(model, 'conv2'))).toEqual(new Set([5 * 5 * 4 + 1 + 5 * 5 * 10]));
    model.dispose();
  });

  it('attention heads: q, k, v columns and biases, and the output projection rows', () => {
    const model = Model.create(charTransformer({ vocabSize: 11, context: 6, dim: 16, heads: 4, layers: 1 }), { seed: 0 });
    const group = model.group('block0.attn:heads');
    const withBias = group.params.some((p) => p.param === 'block0.attn/bq');
    expect(new Set(count(model, 'block0.attn:heads'))).toEqual(new Set([3 * 16 * 4 + (withBias ? 3 * 4 : 0) + 4 * 16]));
    model.dispose();
  });
});

describe('taylorGroup', () => {
  it('is signed w * dL/dw summed over batches; a unit scores |sum over its coupled weights|', () => {
    const model = linearModel();
    const batches = [
      { x: tf.tensor2d([[1, 2]]), y: tf.tensor2d([[0, 1]]) },
      { x: tf.tensor2d([[-1, 1]]), y: tf.tensor2d([[1, 0]]) },
    ];
    // W * dL/dW per batch (see above): [[2.1, -5.8], [2.1, 17.4]] and [[1.4, 9.8], [-0.7, 14.7]].
    const t = taylorGroup.weights(model, ['fc/kernel'], { batches, loss: 'mse' });
    const expected = tf.tensor2d([[3.5, 4], [1.4, 32.1]]);
    expect(maxAbsDiff(t.get('fc/kernel') as tf.Tensor, expected)).toBeLessThan(1e-5);
    tf.dispose([...t.values(), expected]);
    // A hidden unit's group score is |sum|, not the sum of |.|: check against the per-weight values.
    const mlp = Model.create(lenet300100({ inputs: 3, hidden: [4, 2], classes: 2 }), { seed: 1 });
    const data = [{ x: tf.tensor2d([[1, -2, 0.5], [0, 1, 1]]), y: tf.tensor1d([0, 1], 'int32') }];
    const per = taylorGroup.weights(mlp, ['fc1/kernel', 'fc1/bias', 'fc2/kernel'], { batches: data });
    const k1 = (per.get('fc1/kernel') as tf.Tensor).arraySync() as number[][];
    const b1 = (per.get('fc1/bias') as tf.Tensor).arraySync() as number[];
    const k2 = (per.get('fc2/kernel') as tf.Tensor).arraySync() as number[][];
    const unit = (u: number) => Math.abs(k1.reduce((a, row) => a + row[u], 0) + b1[u] + k2[u].reduce((a, v) => a + v, 0));
    const scores = groupUnitScores(mlp, [mlp.group('fc1')], taylorGroup, { batches: data }).get('fc1') as Float64Array;
    for (let u = 0; u < 4; u++) expect(scores[u]).toBeCloseTo(unit(u), 6);
    tf.dispose([...per.values(), ...batches.flatMap((b) => [b.x, b.y]), data[0].x, data[0].y]);
    model.dispose();
    mlp.dispose();
  });
});
