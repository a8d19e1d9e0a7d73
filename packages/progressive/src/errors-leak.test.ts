// Issue 17, defect 4: every public function of @rs/progressive that makes tensors leaves the
// live-tensor count unchanged when it throws, throws a typed error, and leaves the network as it
// was. One table of named cases per entry point.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Model, tf, adam, lenet300100, type GraphDef, type Tensor } from '@rs/core';
import { failureProblems, type FailureCase, failureData } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { ProgressiveNet, addColumn, removeWeakLaterals, runSequence, continualMetrics, analyzeColumn, progressiveRegistry, type ContinualTask } from './index';

const mlp = (classes = 3, inputs = 6): GraphDef => lenet300100({ inputs, hidden: [8, 5], classes });

let net: ProgressiveNet;
let x: Tensor, y: Tensor, xWide: Tensor, yShort: Tensor;
let yFloat2d: Tensor;

beforeAll(async () => {
  await install();
  ({ x, y, xWide, yShort } = failureData());
  yFloat2d = tf.zeros([8, 5]);
  net = ProgressiveNet.create(mlp(), { task: 'a', seed: 1 });
  await net.train('a', { x, y }, { epochs: 1, batchSize: 4 });
  net.addColumn('b');
  // Trained (column b, with its optimizer state), so every failed call must leave it byte for byte.
  await net.train('b', { x, y }, { epochs: 1, batchSize: 4 });
});

afterAll(() => {
  net.dispose();
  tf.dispose([x, y, xWide, yShort, yFloat2d]);
});

const userError = new Error('user function failed');

/** An optimizer whose schedule fails at the update: refused after the gradients exist. */
const failingOptimizer = () => adam({ learningRate: () => Number.NaN });

describe('ProgressiveNet.create and fromModel', () => {
  it('refuse bad task ids and architectures with a typed error and no tensor left', async () => {
    const twoOutputs: GraphDef = { ...mlp(), outputs: ['fc1', 'fc3'] };
    const noLayer: GraphDef = { inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }], nodes: [{ id: 'r', op: 'relu', inputs: ['x'], attrs: {} }], outputs: ['r'] };
    const badAttrs: GraphDef = { ...mlp(), nodes: mlp().nodes.map((n) => (n.op === 'dense' ? { ...n, attrs: { ...n.attrs, units: 0 } } : n)) };
    const unknownOp: GraphDef = { ...mlp(), nodes: mlp().nodes.map((n, i) => (i === 0 ? { ...n, op: 'nope' } : n)) };
    const cases: FailureCase[] = [
      ['task undefined', () => ProgressiveNet.create(mlp(), { task: undefined as never }), 'INVALID_ARGUMENT'],
      ['task empty string', () => ProgressiveNet.create(mlp(), { task: '' }), 'INVALID_ARGUMENT'],
      ['task 1.5', () => ProgressiveNet.create(mlp(), { task: 1.5 }), 'INVALID_ARGUMENT'],
      ['task NaN', () => ProgressiveNet.create(mlp(), { task: Number.NaN }), 'INVALID_ARGUMENT'],
      ['task an object', () => ProgressiveNet.create(mlp(), { task: {} as never }), 'INVALID_ARGUMENT'],
      ['no options', () => ProgressiveNet.create(mlp(), undefined as never), 'INVALID_ARGUMENT'],
      ['two outputs', () => ProgressiveNet.create(twoOutputs, { task: 'a' }), 'SHAPE_MISMATCH'],
      ['no dense or conv2d layer', () => ProgressiveNet.create(noLayer, { task: 'a' }), 'SHAPE_MISMATCH'],
      ['dense units 0', () => ProgressiveNet.create(badAttrs, { task: 'a' }), 'INVALID_ATTRS'],
      ['unknown op', () => ProgressiveNet.create(unknownOp, { task: 'a' }), 'UNKNOWN_OP'],
      ['analyzeColumn, two outputs', () => analyzeColumn(twoOutputs, progressiveRegistry()), 'SHAPE_MISMATCH'],
    ];
    expect(await failureProblems(cases)).toEqual([]);
    const plain = Model.create(mlp(), { seed: 3 });
    expect(await failureProblems([['fromModel, a plain model', () => ProgressiveNet.fromModel(plain), 'INVALID_ARGUMENT']])).toEqual([]);
    plain.dispose();
  });
});

describe('addColumn', () => {
  it('refuses bad task ids, architectures and adapters: typed error, no leak, network unchanged', async () => {
    expect(await failureProblems([
      ['task already has a column', () => addColumn(net, 'a'), 'INVALID_ARGUMENT'],
      ['task empty string', () => net.addColumn(''), 'INVALID_ARGUMENT'],
      ['task 0.5', () => addColumn(net, 0.5), 'INVALID_ARGUMENT'],
      ['column of another input width', () => addColumn(net, 'c', { graph: mlp(3, 7) }), 'SHAPE_MISMATCH'],
      ['column with two outputs', () => addColumn(net, 'c', { graph: { ...mlp(), outputs: ['fc1', 'fc3'] } }), 'SHAPE_MISMATCH'],
      ['adapter width 0', () => addColumn(net, 'c', { adapter: { width: 0 } }), 'INVALID_ARGUMENT'],
      ['adapter width NaN from a function', () => addColumn(net, 'c', { adapter: { width: () => Number.NaN } }), 'INVALID_ARGUMENT'],
      ['adapter width function throws', () => addColumn(net, 'c', { adapter: { width: () => { throw userError; } } }), userError],
      ['adapter alphaInit NaN', () => addColumn(net, 'c', { adapter: { alphaInit: Number.NaN } }), 'INVALID_ATTRS'],
      ['adapter alphaInit Infinity', () => addColumn(net, 'c', { adapter: { alphaInit: Number.POSITIVE_INFINITY } }), 'INVALID_ATTRS'],
    ], { model: net.model, state: () => net.tasks })).toEqual([]);
  });
});

describe('removeWeakLaterals', () => {
  it('refuses bad tasks and options: typed error, no leak, network unchanged', async () => {
    expect(await failureProblems([
      ['unknown task', () => removeWeakLaterals(net, 'z', { fraction: 0.5 }), 'UNKNOWN_TASK'],
      ['no threshold or fraction', () => removeWeakLaterals(net, 'b', {}), 'INVALID_ARGUMENT'],
      ['threshold NaN', () => removeWeakLaterals(net, 'b', { threshold: Number.NaN }), 'INVALID_ARGUMENT'],
      ['fraction 2', () => removeWeakLaterals(net, 'b', { fraction: 2 }), 'INVALID_ARGUMENT'],
      ['fraction -0.1', () => removeWeakLaterals(net, 'b', { fraction: -0.1 }), 'INVALID_ARGUMENT'],
      ['fraction NaN', () => removeWeakLaterals(net, 'b', { fraction: Number.NaN }), 'INVALID_ARGUMENT'],
      ['laterals of an unknown task', () => net.laterals('z'), 'UNKNOWN_TASK'],
    ], { model: net.model, state: () => net.tasks })).toEqual([]);
  });
});

describe('predict and evaluate', () => {
  it('refuse unknown tasks and data of the wrong shape: typed error, no leak, network unchanged', async () => {
    const x3 = tf.zeros([2, 3, 6]);
    const xBig = tf.zeros([10, 7]);
    expect(await failureProblems([
      ['predict, unknown task', () => net.predict(x, 'z'), 'UNKNOWN_TASK'],
      ['predict, x of the wrong width', () => net.predict(xWide, 'b'), 'SHAPE_MISMATCH'],
      ['predict, rank-3 x', () => net.predict(x3, 'a'), 'SHAPE_MISMATCH'],
      ['predict in batches, x of the wrong width', () => net.predict(xBig, 'b', { batchSize: 4 }), 'SHAPE_MISMATCH'],
      ['predict, batchSize 0', () => net.predict(x, 'b', { batchSize: 0 }), 'INVALID_ARGUMENT'],
      ['predict, batchSize NaN', () => net.predict(x, 'b', { batchSize: Number.NaN }), 'INVALID_ARGUMENT'],
      ['evaluate, unknown task', () => net.evaluate({ x, y }, 'z'), 'UNKNOWN_TASK'],
      ['evaluate, x of the wrong width', () => net.evaluate({ x: xWide, y }, 'b'), 'SHAPE_MISMATCH'],
      ['evaluate, short labels', () => net.evaluate({ x, y: yShort }, 'a'), 'DATA_MISMATCH'],
      ['evaluate, no inputs', () => net.evaluate({ x: [], y }, 'a'), 'DATA_MISMATCH'],
      ['plan, unknown task', () => net.plan('z'), 'UNKNOWN_TASK'],
      ['outputOf, unknown task', () => net.outputOf('z'), 'UNKNOWN_TASK'],
    ], { model: net.model, state: () => net.tasks })).toEqual([]);
    tf.dispose([x3, xBig]);
  });
});

describe('train', () => {
  it('refuses bad tasks, options and data, and failures mid-training: typed error, no leak, network unchanged', async () => {
    expect(await failureProblems([
      ['unknown task', () => net.train('z', { x, y }), 'UNKNOWN_TASK'],
      ['frozen column', () => net.train('a', { x, y }), 'INVALID_ARGUMENT'],
      ['epochs 0', () => net.train('b', { x, y }, { epochs: 0 }), 'INVALID_ARGUMENT'],
      ['epochs 1.5', () => net.train('b', { x, y }, { epochs: 1.5 }), 'INVALID_ARGUMENT'],
      ['batchSize 0', () => net.train('b', { x, y }, { batchSize: 0 }), 'INVALID_ARGUMENT'],
      ['batchSize NaN', () => net.train('b', { x, y }, { batchSize: Number.NaN }), 'INVALID_ARGUMENT'],
      ['maxSteps 0', () => net.train('b', { x, y }, { maxSteps: 0 }), 'INVALID_ARGUMENT'],
      ['maxSteps -1', () => net.train('b', { x, y }, { maxSteps: -1 }), 'INVALID_ARGUMENT'],
      ['maxSteps NaN', () => net.train('b', { x, y }, { maxSteps: Number.NaN }), 'INVALID_ARGUMENT'],
      ['short targets', () => net.train('b', { x, y: yShort }), 'DATA_MISMATCH'],
      ['no inputs', () => net.train('b', { x: [], y }), 'DATA_MISMATCH'],
      ['x of the wrong width', () => net.train('b', { x: xWide, y }), 'SHAPE_MISMATCH'],
      ['targets of the wrong shape (loss fails after the forward pass)', () => net.train('b', { x, y: yFloat2d }), 'DATA_MISMATCH'],
      ['optimizer fails after the gradients', () => net.train('b', { x, y }, { optimizer: failingOptimizer() }), 'INVALID_ARGUMENT'],
    ], { model: net.model, state: () => net.tasks })).toEqual([]);
  });
});

describe('runSequence', () => {
  it('refuses bad strategies, tasks and data: typed error, no tensor left', async () => {
    const good = (id: string): ContinualTask => ({ id, train: { x, y }, test: { x, y } });
    const wideTest = (id: string): ContinualTask => ({ id, train: { x, y }, test: { x: xWide, y } });
    const cases: FailureCase[] = [
      ['unknown strategy', () => runSequence('ewc' as never, [good('a')], { graph: mlp() }), 'INVALID_ARGUMENT'],
      ['no tasks', () => runSequence('progressive', [], { graph: mlp() }), 'INVALID_ARGUMENT'],
      ['finetune over two architectures', () => runSequence('finetune', [good('a'), { ...good('b'), graph: mlp(2) }], { graph: mlp() }), 'INVALID_ARGUMENT'],
      ['test data of the wrong width (baseline network)', () => runSequence('progressive', [wideTest('a')], { graph: mlp() }), 'SHAPE_MISMATCH'],
      ['second task test data of the wrong width', () => runSequence('independent', [good('a'), wideTest('b')], { graph: mlp(), train: { maxSteps: 1 } }), 'SHAPE_MISMATCH'],
      ['progressive, duplicate task id', () => runSequence('progressive', [good('a'), good('a')], { graph: mlp(), train: { maxSteps: 1 } }), 'INVALID_ARGUMENT'],
      ['randomFrozen, task id "random" (its column cannot be added)', () => runSequence('randomFrozen', [good('a'), good('random')], { graph: mlp(), train: { maxSteps: 1 } }), 'INVALID_ARGUMENT'],
      ['randomFrozen, second column that does not fit', () => runSequence('randomFrozen', [good('a'), { ...good('b'), graph: mlp(3, 7) }], { graph: mlp(), train: { maxSteps: 1 } }), 'SHAPE_MISMATCH'],
      ['training fails (epochs 0)', () => runSequence('progressive', [good('a')], { graph: mlp(), train: { epochs: 0 } }), 'INVALID_ARGUMENT'],
      ['finetune, optimizer fails', () => runSequence('finetune', [good('a')], { graph: mlp(), optimizer: failingOptimizer }), 'INVALID_ARGUMENT'],
      ['independent, optimizer fails', () => runSequence('independent', [good('a'), good('b')], { graph: mlp(), optimizer: failingOptimizer }), 'INVALID_ARGUMENT'],
      ['bad adapter', () => runSequence('progressive', [good('a'), good('b')], { graph: mlp(), adapter: { width: 0 }, train: { maxSteps: 1 } }), 'INVALID_ARGUMENT'],
    ];
    expect(await failureProblems(cases)).toEqual([]);
  });

  it('continualMetrics refuses a bad matrix (no tensors involved)', () => {
    expect(() => continualMetrics([])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => continualMetrics([[Number.NaN]])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => continualMetrics([[0.5]], [0.1, 0.2])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
