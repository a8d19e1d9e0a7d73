// Issue 17, defect 4: every public function of @rs/moe that makes tensors leaves the
// live-tensor count unchanged when it throws, throws a typed error, and leaves the model as it
// was. One table of named cases per entry point.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Model, createOpRegistry, tf, fit, adam, trainStep, computeGradients, softmaxCrossEntropy, lenet300100, type GraphDef, type LossFn, type Tensor } from '@rs/core';
import { failureProblems, type FailureCase, failureData } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { registerMoe, addExpert, removeExpert, mergeExperts, upcycle, moeGraph, balanceLoss, routerZLoss, routerEntropy, type MoeAttrs } from './index';

const registry = registerMoe(createOpRegistry());

/** x -> moe -> (x + moe) -> head. */
function mlp(attrs: Partial<MoeAttrs> = {}): GraphDef {
  return {
    inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
    nodes: [
      { id: 'moe', op: 'moe', inputs: ['x'], attrs: { experts: 3, hidden: 4, ...attrs } },
      { id: 'res', op: 'add', inputs: ['x', 'moe'], attrs: {} },
      { id: 'head', op: 'dense', inputs: ['res'], attrs: { units: 3 } },
    ],
    outputs: ['head'],
  };
}

let model: Model;
let x: Tensor, y: Tensor, xWide: Tensor, yShort: Tensor;

beforeAll(async () => {
  await install();
  model = Model.create(mlp({ routing: 'top2', dropless: true }), { seed: 1, registry });
  ({ x, y, xWide, yShort } = failureData());
  // Trained, so optimizer state must survive every failed call byte for byte.
  await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam(), epochs: 1, batchSize: 8 });
});

afterAll(() => {
  model.dispose();
  tf.dispose([x, y, xWide, yShort]);
});

const userError = new Error('user function failed');

describe('expert edits', () => {
  it('addExpert, removeExpert and mergeExperts refuse bad input with a typed error, no leak, model unchanged', async () => {
    expect(await failureProblems([
      ['addExpert, unknown node', () => addExpert(model, 'nope'), 'UNKNOWN_NODE'],
      ['addExpert, not a moe node', () => addExpert(model, 'head'), 'INVALID_ARGUMENT'],
      ['addExpert, copyOf 3 of 3 experts', () => addExpert(model, 'moe', { copyOf: 3 }), 'UNIT_INDEX_OUT_OF_RANGE'],
      ['addExpert, copyOf -1', () => addExpert(model, 'moe', { copyOf: -1 }), 'UNIT_INDEX_OUT_OF_RANGE'],
      ['addExpert, copyOf 0.5', () => addExpert(model, 'moe', { copyOf: 0.5 }), 'UNIT_INDEX_OUT_OF_RANGE'],
      ['removeExpert, unknown node', () => removeExpert(model, 'nope', 0), 'UNKNOWN_NODE'],
      ['removeExpert, not a moe node', () => removeExpert(model, 'res', 0), 'INVALID_ARGUMENT'],
      ['removeExpert, expert 3', () => removeExpert(model, 'moe', 3), 'UNIT_INDEX_OUT_OF_RANGE'],
      ['removeExpert, expert NaN', () => removeExpert(model, 'moe', Number.NaN), 'UNIT_INDEX_OUT_OF_RANGE'],
      ['mergeExperts, unknown node', () => mergeExperts(model, 'nope', 0, 1), 'UNKNOWN_NODE'],
      ['mergeExperts, expert with itself', () => mergeExperts(model, 'moe', 1, 1), 'INVALID_ARGUMENT'],
      ['mergeExperts, drop out of range', () => mergeExperts(model, 'moe', 0, 7), 'UNIT_INDEX_OUT_OF_RANGE'],
      ['mergeExperts, keep out of range', () => mergeExperts(model, 'moe', -2, 0), 'UNIT_INDEX_OUT_OF_RANGE'],
      ['mergeExperts, weights [0, 0]', () => mergeExperts(model, 'moe', 0, 1, { weights: [0, 0] }), 'INVALID_ARGUMENT'],
      ['mergeExperts, weights [-1, 2]', () => mergeExperts(model, 'moe', 0, 1, { weights: [-1, 2] }), 'INVALID_ARGUMENT'],
      ['mergeExperts, weights [NaN, 1]', () => mergeExperts(model, 'moe', 0, 1, { weights: [Number.NaN, 1] }), 'INVALID_ARGUMENT'],
      ['mergeExperts, weights [Infinity, 1]', () => mergeExperts(model, 'moe', 0, 1, { weights: [Number.POSITIVE_INFINITY, 1] }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });

  it('removeExpert of the last expert is REMOVE_ALL_UNITS', async () => {
    const single = Model.create(mlp({ experts: 1, routing: 'switch' }), { seed: 2, registry });
    expect(await failureProblems([['last expert', () => removeExpert(single, 'moe', 0), 'REMOVE_ALL_UNITS']], { model: single })).toEqual([]);
    single.dispose();
  });

  it('addExpert copying an expert of a pruned (masked) layer: a bad copyOf changes nothing', async () => {
    const masked = Model.create(mlp({ routing: 'switch' }), { seed: 3, registry });
    masked.edit((tx) => {
      const mask = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([3, 6, 4], 0, 1, 'float32', 4), 0.5), 'float32'));
      tx.setMask('moe/w1', mask);
      mask.dispose();
    });
    expect(await failureProblems([['copyOf 5', () => addExpert(masked, 'moe', { copyOf: 5 }), 'UNIT_INDEX_OUT_OF_RANGE']], { model: masked })).toEqual([]);
    masked.dispose();
  });
});

describe('upcycle', () => {
  it('refuses bad input with a typed error, no leak, model unchanged', async () => {
    const dense = Model.create(lenet300100({ inputs: 6, hidden: [8, 5], classes: 3 }), { seed: 5, registry });
    expect(await failureProblems(
      [
        ['experts 0', () => upcycle(dense, { experts: 0 }), 'INVALID_ARGUMENT'],
        ['experts 2.5', () => upcycle(dense, { experts: 2.5 }), 'INVALID_ARGUMENT'],
        ['ffns names a node that starts no FFN', () => upcycle(dense, { experts: 2, ffns: ['fc3'] }), 'INVALID_ARGUMENT'],
        ['ffns names an unknown node', () => upcycle(dense, { experts: 2, ffns: ['nope'] }), 'INVALID_ARGUMENT'],
        ['capacityFactor 0 (refused by the op, inside the edit)', () => upcycle(dense, { experts: 2, capacityFactor: 0 }), 'INVALID_ATTRS'],
        ['capacityFactor NaN', () => upcycle(dense, { experts: 2, capacityFactor: Number.NaN }), 'INVALID_ATTRS'],
        ['unknown routing', () => upcycle(dense, { experts: 2, routing: 'best' as never }), 'INVALID_ATTRS'],
        ['topk with k > experts', () => upcycle(dense, { experts: 2, routing: 'topk', k: 3 }), 'INVALID_ATTRS'],
        ['balanceCoef -1', () => upcycle(dense, { experts: 2, balanceCoef: -1 }), 'INVALID_ATTRS'],
        ['routerStd NaN', () => upcycle(dense, { experts: 2, routerStd: Number.NaN }), 'INVALID_ARGUMENT'],
        ['routerStd -1', () => upcycle(dense, { experts: 2, routerStd: -1 }), 'INVALID_ARGUMENT'],
        ['routerStd Infinity', () => upcycle(dense, { experts: 2, routerStd: Number.POSITIVE_INFINITY }), 'INVALID_ARGUMENT'],
        ["routerInit 'bogus'", () => upcycle(dense, { experts: 2, routerInit: 'bogus' as never }), 'INVALID_ARGUMENT'],
      ],
      { model: dense },
    )).toEqual([]);
    dense.dispose();
  });

  it('a model without an FFN chain', async () => {
    const graph: GraphDef = { inputs: [{ id: 'x', shape: [null, 4], dtype: 'float32' }], nodes: [{ id: 'out', op: 'dense', inputs: ['x'], attrs: { units: 2 } }], outputs: ['out'] };
    const m = Model.create(graph, { seed: 6, registry });
    expect(await failureProblems([['no FFN', () => upcycle(m, { experts: 2 }), 'INVALID_ARGUMENT']], { model: m })).toEqual([]);
    m.dispose();
  });
});

describe('moe layers in models', () => {
  it('invalid moe attributes are refused when the model is made, with no tensor left', async () => {
    const cases: [string, Partial<MoeAttrs>][] = [
      ['experts 0', { experts: 0 }],
      ['hidden -1', { hidden: -1 }],
      ['units 1.5', { units: 1.5 }],
      ['unknown routing', { routing: 'best' as never }],
      ['k 0', { routing: 'topk', k: 0 }],
      ['k > experts', { routing: 'topk', k: 4 }],
      ['capacityFactor 0', { capacityFactor: 0 }],
      ['evalCapacityFactor Infinity', { evalCapacityFactor: Number.POSITIVE_INFINITY }],
      ['zCoef -0.1', { zCoef: -0.1 }],
      ['unknown activation', { activation: 'tanh' as never }],
    ];
    expect(
      await failureProblems([
        ...cases.map(([name, attrs]): FailureCase => [name, () => Model.create(mlp(attrs), { seed: 7, registry }), 'INVALID_ATTRS']),
        ['moe not registered', () => Model.create(mlp(), { seed: 7 }), 'UNKNOWN_OP'],
      ]),
    ).toEqual([]);
  });

  it('forward, gradients and training on bad data: typed error, no leak (router state, aux losses, metrics released), model unchanged', async () => {
    const throwingLoss: LossFn = () => {
      throw userError;
    };
    const x3 = tf.zeros([2, 3, 7]);
    expect(await failureProblems([
      ['apply, x of the wrong width', () => model.apply(xWide), 'SHAPE_MISMATCH'],
      ['apply, rank-3 input of the wrong width', () => model.apply(x3), 'SHAPE_MISMATCH'],
      ['apply training, x of the wrong width', () => model.apply(xWide, { training: true }), 'SHAPE_MISMATCH'],
      ['computeGradients, short targets', () => computeGradients(model, [x], yShort, softmaxCrossEntropy), 'DATA_MISMATCH'],
      ['computeGradients, throwing loss after the aux losses were added', () => computeGradients(model, [x], y, throwingLoss), userError],
      ['trainStep, short targets', () => trainStep(model, [x], yShort, softmaxCrossEntropy, adam()), 'DATA_MISMATCH'],
      ['trainStep, throwing loss', () => trainStep(model, [x], y, throwingLoss, adam()), userError],
      ['fit, x of the wrong width', () => fit(model, { x: xWide, y }, { loss: 'softmaxCrossEntropy' }), 'SHAPE_MISMATCH'],
      ['fit, throwing loss', () => fit(model, { x, y }, { loss: throwingLoss }), userError],
    ], { model })).toEqual([]);
    x3.dispose();
  });
});

describe('moeGraph', () => {
  it('refuses a graph without the named FFN (no tensors involved)', () => {
    const graph = lenet300100({ inputs: 6, hidden: [8, 5], classes: 3 });
    expect(() => moeGraph(graph, { experts: 2 }, ['fc3'])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('auxiliary losses called directly', () => {
  it('refuse inputs of the wrong rank or length with a typed error and leak nothing', async () => {
    const probs = tf.tensor2d([
      [0.6, 0.2, 0.2],
      [0.1, 0.8, 0.1],
    ]);
    const flat = tf.tensor1d([0.5, 0.5]);
    const cube = tf.zeros([2, 2, 3]);
    const cases: FailureCase[] = [
      ['balanceLoss, firstChoice of the wrong length', () => balanceLoss(probs, [1, 1]), 'SHAPE_MISMATCH'],
      ['balanceLoss, rank-1 probs', () => balanceLoss(flat, [1, 1]), 'SHAPE_MISMATCH'],
      ['balanceLoss, rank-3 probs', () => balanceLoss(cube, [1, 1, 0]), 'SHAPE_MISMATCH'],
      ['routerZLoss, rank-1 logits', () => routerZLoss(flat), 'SHAPE_MISMATCH'],
      ['routerEntropy, rank-1 probs', () => routerEntropy(flat), 'SHAPE_MISMATCH'],
    ];
    expect(await failureProblems(cases)).toEqual([]);
    // And on success they leave only their result.
    for (const [name, call] of [
      ['balanceLoss', () => balanceLoss(probs, [1, 1, 0])],
      ['routerZLoss', () => routerZLoss(probs)],
      ['routerEntropy', () => routerEntropy(probs)],
    ] as [string, () => Tensor][]) {
      const live = tf.memory().numTensors;
      const out = call();
      expect(tf.memory().numTensors - live, name).toBe(1);
      out.dispose();
    }
    tf.dispose([probs, flat, cube]);
  });
});
