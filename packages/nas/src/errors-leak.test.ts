// Issue 17, defect 4: every public function of @rs/nas that makes tensors leaves the live-tensor
// count unchanged when it throws, throws a typed error, and leaves the model as it was. One table
// of named cases per entry point.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Model, tf, adam, createOpRegistry, type Tensor } from '@rs/core';
import { failureProblems, type FailureCase } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { registerNasOps, dartsSupernet, darts, discretize, architectureWeights, cellNetwork, trainingEvaluator, mnistMlpSpace, search, tableEvaluator, nb201Space, checkArchitecture, type Evaluator } from './index';

const registry = registerNasOps(createOpRegistry());
const small = { inputShape: [8, 8, 1] as [number, number, number], channels: 3, stemStride: 1, classes: 3 };

let model: Model;
let train: { x: Tensor; y: Tensor };
let validation: { x: Tensor; y: Tensor };
let xWide: Tensor;
let yShort: Tensor;
let yFloat2d: Tensor;

function data(seed: number, count = 8): { x: Tensor; y: Tensor } {
  return { x: tf.randomNormal([count, 8, 8, 1], 0, 1, 'float32', seed), y: tf.tensor1d(Array.from({ length: count }, (_, i) => (i + seed) % 3), 'int32') };
}

beforeAll(async () => {
  await install();
  model = Model.create(dartsSupernet(small), { registry, seed: 1 });
  train = data(1, 8);
  validation = data(2, 8);
  xWide = tf.zeros([8, 9, 9, 1]);
  yShort = tf.tensor1d([0, 1, 2, 0], 'int32');
  yFloat2d = tf.zeros([8, 5]);
  // Trained (weights and alpha, with Adam state), so every failed call must leave it byte for byte.
  darts(model, { train, validation, steps: 1, batchSize: 8 });
});

afterAll(() => {
  model.dispose();
  tf.dispose([train.x, train.y, validation.x, validation.y, xWide, yShort, yFloat2d]);
});

/** An optimizer whose schedule fails at the update: refused after the gradients exist. */
const failingOptimizer = () => adam({ learningRate: () => Number.NaN });

describe('darts', () => {
  it('refuses bad options and data, and failures mid-step: typed error, no leak, model unchanged', async () => {
    const opts = { train, validation, steps: 1, batchSize: 8 };
    expect(await failureProblems([
      ['steps 0', () => darts(model, { ...opts, steps: 0 }), 'INVALID_BUDGET'],
      ['steps NaN', () => darts(model, { ...opts, steps: Number.NaN }), 'INVALID_BUDGET'],
      ['batchSize 0', () => darts(model, { ...opts, batchSize: 0 }), 'INVALID_ARGUMENT'],
      ['batchSize 2.5', () => darts(model, { ...opts, batchSize: 2.5 }), 'INVALID_ARGUMENT'],
      ['batchSize larger than the data', () => darts(model, { ...opts, batchSize: 16 }), 'DATA_MISMATCH'],
      ['unknown order', () => darts(model, { ...opts, order: 'third' as never }), 'INVALID_ARGUMENT'],
      ['unrolledLearningRate NaN', () => darts(model, { ...opts, order: 'second', unrolledLearningRate: Number.NaN }), 'INVALID_ARGUMENT'],
      ['hessianStep 0', () => darts(model, { ...opts, order: 'second', hessianStep: 0 }), 'INVALID_ARGUMENT'],
      ['hessianStep -1', () => darts(model, { ...opts, order: 'second', hessianStep: -1 }), 'INVALID_ARGUMENT'],
      ['train x given as an array', () => darts(model, { ...opts, train: { x: [train.x], y: train.y } }), 'DATA_MISMATCH'],
      ['train targets short', () => darts(model, { ...opts, train: { x: train.x, y: yShort } }), 'DATA_MISMATCH'],
      ['validation targets short', () => darts(model, { ...opts, validation: { x: validation.x, y: yShort } }), 'DATA_MISMATCH'],
      ['validation x of the wrong size', () => darts(model, { ...opts, validation: { x: xWide, y: validation.y } }), 'SHAPE_MISMATCH'],
      ['train x of the wrong size (after the architecture step)', () => darts(model, { ...opts, train: { x: xWide, y: train.y } }), 'SHAPE_MISMATCH'],
      ['second order, train x of the wrong size', () => darts(model, { ...opts, order: 'second', train: { x: xWide, y: train.y } }), 'SHAPE_MISMATCH'],
      ['targets of the wrong shape (loss fails)', () => darts(model, { ...opts, validation: { x: validation.x, y: yFloat2d } }), 'DATA_MISMATCH'],
      ['architecture optimizer fails', () => darts(model, { ...opts, archOptimizer: failingOptimizer() }), 'INVALID_ARGUMENT'],
      ['second order, architecture optimizer fails', () => darts(model, { ...opts, order: 'second', archOptimizer: failingOptimizer() }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });

  it('a weight optimizer that fails after the architecture step: typed error, no leak (gradients and batch statistics released)', async () => {
    expect(await failureProblems([['weight optimizer fails', () => darts(model, { train, validation, steps: 1, batchSize: 8, weightOptimizer: failingOptimizer() }), 'INVALID_ARGUMENT']])).toEqual([]);
  });
  it('a weight optimizer that fails after the architecture step leaves alpha and its optimizer state unchanged', async () => {
    // Train one good step first, so that alpha has Adam moments and a step count to protect.
    await darts(model, { train, validation, steps: 1, batchSize: 8 });
    expect(await failureProblems([['weight optimizer fails', () => darts(model, { train, validation, steps: 1, batchSize: 8, weightOptimizer: failingOptimizer() }), 'INVALID_ARGUMENT']], { model })).toEqual([]);
  });

  it('a model without mixed nodes is refused by darts, discretize and dartsSupernet', async () => {
    const plain = Model.create(cellNetwork(Array(6).fill(['skip_connect']), small), { registry, seed: 2 });
    expect(await failureProblems(
      [
        ['darts, no mixed node', () => darts(plain, { train, validation, steps: 1, batchSize: 8 }), 'INVALID_ARGUMENT'],
        ['discretize, no mixed node', () => discretize(plain), 'INVALID_ARGUMENT'],
      ],
      { model: plain },
    )).toEqual([]);
    plain.dispose();
    expect(await failureProblems([
      ['discretize, every candidate excluded', () => discretize(model, { exclude: ['none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3'] }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
    expect(() => dartsSupernet({ ...small, candidates: ['conv_9x9'] } as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(Object.keys(architectureWeights(model))).toHaveLength(6);
  });

  it('bad mixed attributes and cells are refused when the model is made, with no tensor left', async () => {
    const bad = dartsSupernet(small);
    const mixedNode = bad.nodes.find((n) => n.op === 'nas.mixed');
    if (!mixedNode) throw new Error('no mixed node');
    const cases: FailureCase[] = [
      ['candidates of the wrong length', () => Model.create({ ...bad, nodes: bad.nodes.map((n) => (n === mixedNode ? { ...n, attrs: { candidates: ['none'] } } : n)) }, { registry, seed: 3 }), 'INVALID_ATTRS'],
      ['candidateDropout rate 1', () => Model.create({ ...bad, nodes: bad.nodes.map((n) => (n === mixedNode ? { ...n, attrs: { ...n.attrs, candidateDropout: { candidate: 'skip_connect', rate: 1 } } } : n)) }, { registry, seed: 3 }), 'INVALID_ATTRS'],
      ['mixed not registered', () => Model.create(bad, { seed: 3 }), 'UNKNOWN_OP'],
      ['cell with 5 edges', () => Model.create(cellNetwork(Array(5).fill(['skip_connect']), small), { registry, seed: 3 }), 'INVALID_ARCHITECTURE'],
      ['unknown cell op', () => Model.create(cellNetwork(Array(6).fill(['conv_9x9']), small), { registry, seed: 3 }), 'INVALID_ARCHITECTURE'],
    ];
    expect(await failureProblems(cases)).toEqual([]);
  });
});

describe('trainingEvaluator and search', () => {
  it('bad architectures, data and options: typed error, every trained model released', async () => {
    const space = mnistMlpSpace();
    const x = tf.zeros([8, 784]);
    const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
    const xNarrow = tf.zeros([8, 10]);
    const yShort = tf.tensor1d([0, 1, 2, 3], 'int32');
    const evaluator = (o: Partial<Parameters<typeof trainingEvaluator>[1]> = {}): Evaluator => trainingEvaluator(space, { train: { x, y }, validation: { x, y }, maxSteps: 1, ...o });
    const arch = [0, 0, 0, 0, 0, 0, 0];
    const cases: FailureCase[] = [
      ['architecture with too few choices', () => checkArchitecture(space, [0]), 'INVALID_ARCHITECTURE'],
      ['train x of the wrong width', () => evaluator({ train: { x: xNarrow, y } }).evaluate(arch, 'arch'), 'SHAPE_MISMATCH'],
      ['train targets short', () => evaluator({ train: { x, y: yShort } }).evaluate(arch, 'arch'), 'DATA_MISMATCH'],
      ['validation x of the wrong width (after training)', () => evaluator({ validation: { x: xNarrow, y } }).evaluate(arch, 'arch'), 'SHAPE_MISMATCH'],
      ['test x of the wrong width (after validation)', () => evaluator({ test: { x: xNarrow, y } }).evaluate(arch, 'arch'), 'SHAPE_MISMATCH'],
      ['epochs 0', () => evaluator({ epochs: 0, maxSteps: undefined }).evaluate(arch, 'arch'), 'INVALID_ARGUMENT'],
      ['learningRate NaN', () => evaluator({ learningRate: Number.NaN }).evaluate(arch, 'arch'), 'INVALID_ARGUMENT'],
      ['search, budget of 0 evaluations', () => search({ space, strategy: 'random', evaluator: evaluator(), budget: { evaluations: 0 } }), 'INVALID_BUDGET'],
      ['search, unknown strategy', () => search({ space, strategy: 'grid', evaluator: evaluator(), budget: { evaluations: 1 } }), 'UNKNOWN_STRATEGY'],
      ['search, evaluator fails in training', () => search({ space, strategy: 'random', evaluator: evaluator({ train: { x: xNarrow, y } }), budget: { evaluations: 2 } }), 'SHAPE_MISMATCH'],
      ['search, parallel evaluations fail', () => search({ space, strategy: 'random', evaluator: evaluator({ train: { x: xNarrow, y } }), budget: { evaluations: 3 }, parallel: 2 }), 'SHAPE_MISMATCH'],
      ['tableEvaluator, unknown architecture', () => tableEvaluator(nb201Space(), []).evaluate([0, 0, 0, 0, 0, 0], 'not-in-table'), 'INVALID_ARCHITECTURE'],
    ];
    expect(await failureProblems(cases)).toEqual([]);
    tf.dispose([x, y, xNarrow, yShort]);
  });
});
