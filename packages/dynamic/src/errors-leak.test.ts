// Issue 17, defect 4: every public function of @rs/dynamic that makes tensors leaves the
// live-tensor count unchanged when it throws, throws a typed error, and leaves the model as it
// was. The model has a batchNorm, so training passes report new statistics (state) that a failed
// step must release too.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Model, tf, adam, createRng, type GraphDef, type LossFn, type Tensor } from '@rs/core';
import { failureProblems, failureData } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import {
  addExit,
  setExitPolicy,
  earlyExitPredict,
  calibrateThreshold,
  multiExitStep,
  exitScores,
  Slimmable,
  layerDropStep,
  lossWithAlias,
  skipAlias,
  keepAtDepth,
  addSkipGate,
  gatedStep,
  gatedPredict,
  type GatedBlock,
  type ResidualBlock,
} from './index';

/** x -> fc1 -> bn -> relu -> (relu + fc2 -> relu2) -> out: a residual block and a batchNorm. */
const graph: GraphDef = {
  inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
  nodes: [
    { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
    { id: 'bn', op: 'batchNorm', inputs: ['fc1'], attrs: {} },
    { id: 'relu', op: 'relu', inputs: ['bn'], attrs: {} },
    { id: 'fc2', op: 'dense', inputs: ['relu'], attrs: { units: 8 } },
    { id: 'relu2', op: 'relu', inputs: ['fc2'], attrs: {} },
    { id: 'sum', op: 'add', inputs: ['relu', 'relu2'], attrs: {} },
    { id: 'out', op: 'dense', inputs: ['sum'], attrs: { units: 3 } },
  ],
  outputs: ['out'],
};
const block: ResidualBlock = { input: 'relu', output: 'sum' };

let model: Model; // with an exit at 'relu' and a policy
let gatedModel: Model;
let gates: GatedBlock[];
let x: Tensor, y: Tensor, xWide: Tensor, yShort: Tensor;

beforeAll(async () => {
  await install();
  ({ x, y, xWide, yShort } = failureData());
  model = Model.create(graph, { seed: 1 });
  addExit(model, { at: 'relu', classes: 3 });
  multiExitStep(model, x, y, adam(), [1, 1]); // trained: optimizer state must survive failures
  setExitPolicy(model, { rule: 'entropy', thresholds: 0.5 });
  gatedModel = Model.create(graph, { seed: 2 });
  gates = [addSkipGate(gatedModel, block)];
});

afterAll(() => {
  model.dispose();
  gatedModel.dispose();
  tf.dispose([x, y, xWide, yShort]);
});

const userError = new Error('user function failed');

const throwingLoss: LossFn = () => {
  throw userError;
};
/** An optimizer whose schedule fails at the update: refused after the gradients exist. */
const failingOptimizer = () => adam({ learningRate: () => Number.NaN });

describe('early exits', () => {
  it('addExit, setExitPolicy, earlyExitPredict, calibrateThreshold, multiExitStep refuse bad input: typed error, no leak, model unchanged', async () => {
    const labels = Int32Array.from(y.dataSync());
    expect(await failureProblems([
      ['addExit, unknown node', () => addExit(model, { at: 'nope', classes: 3 }), 'UNKNOWN_NODE'],
      ['addExit, classes 1', () => addExit(model, { at: 'fc2', classes: 1 }), 'INVALID_ARGUMENT'],
      ['addExit, pool on a rank-2 input', () => addExit(model, { at: 'fc2', classes: 3, pool: 2 }), 'INVALID_ARGUMENT'],
      ['addExit, id already taken', () => addExit(model, { at: 'fc2', classes: 3, id: 'fc1' }), 'DUPLICATE_ID'],
      ['addExit, hidden width 0', () => addExit(model, { at: 'fc2', classes: 3, hidden: [0] }), 'INVALID_ATTRS'],
      ['setExitPolicy, unknown rule', () => setExitPolicy(model, { rule: 'margin' as never, thresholds: 0.5 }), 'INVALID_ARGUMENT'],
      ['setExitPolicy, two thresholds for one exit', () => setExitPolicy(model, { rule: 'entropy', thresholds: [0.1, 0.2] }), 'INVALID_ARGUMENT'],
      ['setExitPolicy, confidence threshold 2', () => setExitPolicy(model, { rule: 'confidence', thresholds: 2 }), 'INVALID_ARGUMENT'],
      ['earlyExitPredict, x of the wrong width', () => earlyExitPredict(model, xWide), 'SHAPE_MISMATCH'],
      ['earlyExitPredict, threshold NaN', () => earlyExitPredict(model, x, { rule: 'entropy', thresholds: Number.NaN }), 'INVALID_ARGUMENT'],
      ['calibrateThreshold, maxDrop 2', () => calibrateThreshold(model, x, labels, { rule: 'entropy', maxDrop: 2 }), 'INVALID_ARGUMENT'],
      ['calibrateThreshold, x of the wrong width', () => calibrateThreshold(model, xWide, labels, { rule: 'entropy', maxDrop: 0.1 }), 'SHAPE_MISMATCH'],
      ['calibrateThreshold, labels of the wrong length', () => calibrateThreshold(model, x, labels.slice(0, 4), { rule: 'entropy', maxDrop: 0.1 }), 'DATA_MISMATCH'],
      ['multiExitStep, one weight for two exits', () => multiExitStep(model, x, y, adam(), [1]), 'INVALID_ARGUMENT'],
      ['multiExitStep, x of the wrong width', () => multiExitStep(model, xWide, y, adam()), 'SHAPE_MISMATCH'],
      ['multiExitStep, short targets (batchNorm state computed)', () => multiExitStep(model, x, yShort, adam()), 'DATA_MISMATCH'],
      ['multiExitStep, optimizer fails after the gradients', () => multiExitStep(model, x, y, failingOptimizer()), 'INVALID_ARGUMENT'],
      ['exitScores, unknown rule', () => exitScores(x, 'margin' as never), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });
});

describe('running with targets and aliases (core: model.apply)', () => {
  it('bad feeds, targets and aliases: typed error, no leak', async () => {
    expect(await failureProblems([
      ['two feeds for one input', () => model.apply([x, x], { targets: ['out'] }), 'INVALID_ARGUMENT'],
      ['unknown target', () => model.apply(x, { targets: ['nope'] }), 'UNKNOWN_NODE'],
      ['alias cycle', () => model.apply(x, { targets: ['out'], alias: new Map([['sum', 'fc2'], ['fc2', 'sum']]) }), 'CYCLE'],
      ['x of the wrong width', () => model.apply(xWide, { targets: ['out'] }), 'SHAPE_MISMATCH'],
    ], { model })).toEqual([]);
  });
});

describe('layer drop', () => {
  it('layerDropStep and lossWithAlias refuse bad input: typed error, no leak, model unchanged', async () => {
    const rng = createRng(1);
    const blocks = [block];
    const alias = skipAlias(blocks, keepAtDepth(1, 1));
    expect(await failureProblems([
      ['layerDropStep, p 1', () => layerDropStep(model, x, y, adam(), { blocks, p: 1, rng }), 'INVALID_ARGUMENT'],
      ['layerDropStep, short targets', () => layerDropStep(model, x, yShort, adam(), { blocks, p: 0, rng }), 'DATA_MISMATCH'],
      ['layerDropStep, throwing loss', () => layerDropStep(model, x, y, adam(), { blocks, p: 0, rng, loss: throwingLoss }), userError],
      ['layerDropStep, optimizer fails after the gradients', () => layerDropStep(model, x, y, failingOptimizer(), { blocks, p: 0, rng }), 'INVALID_ARGUMENT'],
      ['lossWithAlias, x of the wrong width', () => lossWithAlias(model, xWide, y, alias), 'SHAPE_MISMATCH'],
      ['lossWithAlias, throwing loss', () => lossWithAlias(model, x, y, alias, { loss: throwingLoss }), userError],
      ['lossWithAlias, batchSize 0', () => lossWithAlias(model, x, y, alias, { batchSize: 0 }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });
});

describe('conditional computation', () => {
  it('addSkipGate, gatedStep and gatedPredict refuse bad input: typed error, no leak, model unchanged', async () => {
    expect(await failureProblems(
      [
        ['addSkipGate, unknown node', () => addSkipGate(gatedModel, { input: 'nope', output: 'sum' }), 'UNKNOWN_NODE'],
        ['addSkipGate, bias NaN', () => addSkipGate(gatedModel, block, { id: 'g2', bias: Number.NaN }), 'INVALID_ARGUMENT'],
        ['gatedStep, short targets', () => gatedStep(gatedModel, x, yShort, adam(), gates), 'DATA_MISMATCH'],
        ['gatedStep, throwing loss', () => gatedStep(gatedModel, x, y, adam(), gates, { loss: throwingLoss }), userError],
        ['gatedStep, optimizer fails after the gradients', () => gatedStep(gatedModel, x, y, failingOptimizer(), gates), 'INVALID_ARGUMENT'],
        ['gatedPredict, x of the wrong width', () => gatedPredict(gatedModel, xWide, gates), 'SHAPE_MISMATCH'],
      ],
      { model: gatedModel },
    )).toEqual([]);
  });
});

describe('Slimmable', () => {
  it('bad widths, untrained widths and failing steps: typed error, no leak, model unchanged', async () => {
    const m = Model.create(graph, { seed: 3 });
    const slim = new Slimmable(m, { widths: [0.5, 1], groups: ['fc1'] });
    expect(await failureProblems(
      [
        ['widths without 1', () => new Slimmable(m, { widths: [0.5], groups: ['fc1'] }), 'INVALID_ARGUMENT'],
        ['width 0', () => new Slimmable(m, { widths: [0, 1], groups: ['fc1'] }), 'INVALID_ARGUMENT'],
        ['unknown group', () => new Slimmable(m, { widths: [0.5, 1], groups: ['nope'] }), 'UNKNOWN_GROUP'],
        ['apply at an untrained width', () => slim.apply(x, 0.25), 'INVALID_ARGUMENT'],
        ['apply, x of the wrong width', () => slim.apply(xWide, 0.5), 'SHAPE_MISMATCH'],
        ['step, short targets (batchNorm state computed)', () => slim.step(x, yShort, adam()), 'DATA_MISMATCH'],
        ['step, optimizer fails after the gradients', () => slim.step(x, y, failingOptimizer()), 'INVALID_ARGUMENT'],
        ['recalibrate, x of the wrong width', () => slim.recalibrate(xWide), 'SHAPE_MISMATCH'],
      ],
      { model: m },
    )).toEqual([]);
    slim.dispose();
    m.dispose();
  });
});
