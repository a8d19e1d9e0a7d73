// Issue 17, defect 4: every public function of @rs/grow that makes tensors leaves the
// live-tensor count unchanged when it throws, throws a typed error, and leaves the model as it
// was. One table of named cases per entry point.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Model, tf, fit, adam, lenet300100, type GraphDef, type Callback, type LossFn, type RsErrorCode, type Tensor } from '@rs/core';
import { leakOnThrow, failureProblems, failureData } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { widen, deepen } from './net2net';
import { growGradMax } from './gradmax';
import { growOnPlateau, checkBudget } from './plateau';
import { cascadeCorrelation } from './cascor';

const graph = (): GraphDef => lenet300100({ inputs: 6, hidden: [8, 5], classes: 3 });
/** conv -> relu -> flatten -> dense, for the conv cases. */
const convGraph: GraphDef = {
  inputs: [{ id: 'x', shape: [null, 4, 4, 1], dtype: 'float32' }],
  nodes: [
    { id: 'conv', op: 'conv2d', inputs: ['x'], attrs: { filters: 2, kernelSize: 3, padding: 'same' } },
    { id: 'relu', op: 'relu', inputs: ['conv'], attrs: {} },
    { id: 'flat', op: 'flatten', inputs: ['relu'], attrs: {} },
    { id: 'out', op: 'dense', inputs: ['flat'], attrs: { units: 2 } },
  ],
  outputs: ['out'],
};

let model: Model;
let x: Tensor, y: Tensor, xWide: Tensor, yShort: Tensor;
let yOneHot5: Tensor;

beforeAll(async () => {
  await install();
  model = Model.create(graph(), { seed: 1 });
  ({ x, y, xWide, yShort } = failureData());
  yOneHot5 = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32'), 5);
  // Trained, so optimizer state must survive every failed call byte for byte.
  await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam(), epochs: 1, batchSize: 8 });
});

afterAll(() => {
  model.dispose();
  tf.dispose([x, y, xWide, yShort, yOneHot5]);
});

const userError = new Error('user function failed');

const throwingLoss: LossFn = () => {
  throw userError;
};

describe('widen', () => {
  it('refuses bad input with a typed error, no leak, model unchanged', async () => {
    expect(await failureProblems([
      ['unknown group', () => widen(model, 'nope', 2), 'UNKNOWN_GROUP'],
      ['frozen output group', () => widen(model, 'fc3', 2), 'FROZEN_GROUP'],
      ['count 0', () => widen(model, 'fc1', 0), 'INVALID_ARGUMENT'],
      ['count 1.5', () => widen(model, 'fc1', 1.5), 'INVALID_ARGUMENT'],
      ['count NaN', () => widen(model, 'fc1', Number.NaN), 'INVALID_ARGUMENT'],
      ['noise -1', () => widen(model, 'fc1', 2, { noise: -1 }), 'INVALID_ARGUMENT'],
      ['noise NaN', () => widen(model, 'fc1', 2, { noise: Number.NaN }), 'INVALID_ARGUMENT'],
      ['unknown split', () => widen(model, 'fc1', 2, { split: 'halves' as never }), 'INVALID_ARGUMENT'],
      ['unknown optimizerState', () => widen(model, 'fc1', 2, { optimizerState: 'keep' as never }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });
});

describe('deepen', () => {
  it('refuses bad input with a typed error, no leak, model unchanged', async () => {
    expect(await failureProblems([
      ['unknown node', () => deepen(model, 'nope'), 'UNKNOWN_NODE'],
      ['id already taken', () => deepen(model, 'relu1', { id: 'fc2' }), 'DUPLICATE_ID'],
    ], { model })).toEqual([]);
    const conv = Model.create(convGraph, { seed: 2 });
    expect(await failureProblems(
      [
        ['even kernelSize on a conv', () => deepen(conv, 'relu', { kernelSize: 2 }), 'INVALID_ARGUMENT'],
        ['dense after flatten, id of the output node', () => deepen(conv, 'flat', { id: 'out' }), 'DUPLICATE_ID'],
        ['conv, id already taken', () => deepen(conv, 'relu', { id: 'conv' }), 'DUPLICATE_ID'],
      ],
      { model: conv },
    )).toEqual([]);
    conv.dispose();
  });
});

describe('growGradMax', () => {
  it('refuses bad input with a typed error, no leak, model unchanged', async () => {
    const batch = { x, y };
    expect(await failureProblems([
      ['count 0', () => growGradMax(model, 'fc1', 0, { batch }), 'INVALID_ARGUMENT'],
      ['unknown group', () => growGradMax(model, 'nope', 2, { batch }), 'UNKNOWN_GROUP'],
      ['frozen group', () => growGradMax(model, 'fc3', 2, { batch }), 'FROZEN_GROUP'],
      ['x of the wrong width', () => growGradMax(model, 'fc1', 2, { batch: { x: xWide, y } }), 'SHAPE_MISMATCH'],
      ['targets of the wrong length', () => growGradMax(model, 'fc2', 2, { batch: { x, y: yShort } }), 'DATA_MISMATCH'],
      ['one-hot targets of the wrong width', () => growGradMax(model, 'fc2', 2, { batch: { x, y: yOneHot5 } }), 'DATA_MISMATCH'],
      ['two inputs for one', () => growGradMax(model, 'fc1', 2, { batch: { x: [x, x], y } }), 'INVALID_ARGUMENT'],
      ['unknown loss name', () => growGradMax(model, 'fc1', 2, { batch, loss: 'nope' as never }), 'INVALID_ARGUMENT'],
      ['throwing loss', () => growGradMax(model, 'fc2', 2, { batch, loss: throwingLoss }), userError],
      ['scale NaN', () => growGradMax(model, 'fc1', 2, { batch, scale: Number.NaN }), 'INVALID_ARGUMENT'],
      ['scale Infinity', () => growGradMax(model, 'fc1', 2, { batch, scale: Number.POSITIVE_INFINITY }), 'INVALID_ARGUMENT'],
      ['bias NaN', () => growGradMax(model, 'fc1', 2, { batch, bias: Number.NaN }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });

  it('a group that is not dense -> dense is refused before any gradient is computed', async () => {
    const conv = Model.create(convGraph, { seed: 3 });
    const cx = tf.zeros([2, 4, 4, 1]);
    const cy = tf.tensor1d([0, 1], 'int32');
    expect(await failureProblems([['conv group', () => growGradMax(conv, 'conv', 2, { batch: { x: cx, y: cy } }), 'INVALID_ARGUMENT']], { model: conv })).toEqual([]);
    tf.dispose([cx, cy]);
    conv.dispose();
  });
});

describe('growOnPlateau', () => {
  // A getter: x and y exist only once beforeAll has run.
  const base = { groups: ['fc1', 'fc2'], budget: { units: 100 }, get batch() {
    return { x, y };
  } };
  it('refuses bad options with a typed error and no leak', async () => {
    const make = (extra: Record<string, unknown>) => () => growOnPlateau({ ...base, ...extra } as never);
    expect(await failureProblems([
      ['step 0', make({ step: 0 }), 'INVALID_ARGUMENT'],
      ['step for an unlisted group', make({ step: { fc3: 2 } }), 'INVALID_ARGUMENT'],
      ['maxSize 1.5', make({ maxSize: { fc1: 1.5 } }), 'INVALID_ARGUMENT'],
      ['noise -1', make({ noise: -1 }), 'INVALID_ARGUMENT'],
      ['unknown method', make({ method: 'magic' }), 'INVALID_ARGUMENT'],
      ['unknown select', make({ select: 'best' }), 'INVALID_ARGUMENT'],
      ['unknown split', make({ split: 'halves' }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });

  /** fit with the callback, growing at the end of the first epoch; the model is made and disposed inside. */
  async function plateauFailure(callback: Callback, validation = true): Promise<{ error: unknown; leaked: number }> {
    return leakOnThrow(async () => {
      const m = Model.create(graph(), { seed: 4 });
      try {
        await fit(m, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 2, batchSize: 8, validation: validation ? { x, y } : undefined, callbacks: [callback] });
      } finally {
        m.dispose();
      }
    });
  }

  const plateauCases: [string, () => Callback, boolean, RsErrorCode][] = [
    ['no validation data', () => growOnPlateau({ ...base, patience: 1, minDelta: 10 }), false, 'INVALID_ARGUMENT'],
    ['unknown group (scored before growth)', () => growOnPlateau({ ...base, groups: ['fc1', 'nope'], patience: 1, minDelta: 10 }), true, 'UNKNOWN_GROUP'],
    ['frozen group', () => growOnPlateau({ ...base, groups: ['fc3'], patience: 1, minDelta: 10 }), true, 'FROZEN_GROUP'],
    ['scoring batch of the wrong width', () => growOnPlateau({ ...base, batch: { x: xWide, y }, patience: 1, minDelta: 10 }), true, 'SHAPE_MISMATCH'],
    ['scoring batch with short targets', () => growOnPlateau({ ...base, batch: { x, y: yShort }, patience: 1, minDelta: 10 }), true, 'DATA_MISMATCH'],
  ];
  for (const [name, make, validation, code] of plateauCases) {
    it(`fit with a plateau callback, ${name}: ${code}, no leak`, async () => {
      const { error, leaked } = await plateauFailure(make(), validation);
      expect(error).toMatchObject({ code });
      expect(leaked).toBe(0);
    });
  }
});

describe('checkBudget', () => {
  it('over budget: BUDGET_EXCEEDED, nothing allocated', async () => {
    expect(await failureProblems([
      ['units', () => checkBudget(model, { units: 1 }, 1, { units: 1, params: 0, flops: 0 }), 'BUDGET_EXCEEDED'],
      ['params', () => checkBudget(model, { params: 10 }, 0, { units: 1, params: 1, flops: 0 }), 'BUDGET_EXCEEDED'],
    ], { model })).toEqual([]);
  });
});

describe('cascadeCorrelation', () => {
  it('refuses bad data and options with a typed error, no leak', async () => {
    const xs = [0, 0, 0, 1, 1, 0, 1, 1];
    const ys = [0, 1, 1, 0];
    expect(await failureProblems([
      ['data null', () => cascadeCorrelation(null as never), 'INVALID_ARGUMENT'],
      ['count 1', () => cascadeCorrelation({ x: xs, y: ys, count: 1 }), 'INVALID_ARGUMENT'],
      ['x not count * inputSize', () => cascadeCorrelation({ x: xs.slice(1), y: ys }), 'DATA_MISMATCH'],
      ['NaN in x', () => cascadeCorrelation({ x: [Number.NaN, ...xs.slice(1)], y: ys }), 'DATA_MISMATCH'],
      ['label -1', () => cascadeCorrelation({ x: xs, y: [0, 1, -1, 0] }), 'DATA_MISMATCH'],
      ['label 0.5', () => cascadeCorrelation({ x: xs, y: [0, 1, 0.5, 0] }), 'DATA_MISMATCH'],
      ['candidates 0', () => cascadeCorrelation({ x: xs, y: ys }, { candidates: 0 }), 'INVALID_ARGUMENT'],
      ['mu NaN', () => cascadeCorrelation({ x: xs, y: ys }, { mu: Number.NaN }), 'INVALID_ARGUMENT'],
      ['scoreThreshold 2', () => cascadeCorrelation({ x: xs, y: ys }, { scoreThreshold: 2 }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });

  it('predict of the result refuses a wrong input length', () => {
    const result = cascadeCorrelation({ x: [0, 0, 0, 1, 1, 0, 1, 1], y: [0, 1, 1, 0] }, { maxHiddenUnits: 1, outputEpochs: 2, candidateEpochs: 2, buildModel: false });
    expect(() => result.network.predict([1, 2, 3])).toThrow(expect.objectContaining({ code: 'DATA_MISMATCH' }));
  });
});
