// Issue 17, defect 4: every public function of @rs/prune that makes tensors leaves the
// live-tensor count unchanged when it throws, throws a typed error, and leaves the model as it
// was. One table of named cases per entry point.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { Model, tf, fit, adam, lenet300100, type GraphDef, type LossFn, type Tensor } from '@rs/core';
import { leakOnThrow, failureProblems, type FailureCase, failureData } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { pruneWeights, pruneUnits, removeUnits, materialize } from './prune';
import { groupUnitScores } from './group-scores';
import { l1, taylor, taylorGroup, snip, createScoreRegistry, type ImportanceScore } from './scores';
import { gradualPruning, pruneIteratively } from './schedule';
import { findLotteryTicket } from './lottery';
import { pruneReport } from './report';

const graph = (): GraphDef => lenet300100({ inputs: 6, hidden: [8, 5], classes: 3 });

let model: Model;
let x: Tensor, y: Tensor, xWide: Tensor, yBad: Tensor;
let yOneHot5: Tensor;

beforeAll(async () => {
  await install();
  model = Model.create(graph(), { seed: 1 });
  ({ x, y, xWide, yShort: yBad } = failureData()); // yBad: 4 targets for 8 rows
  yOneHot5 = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], 'int32'), 5);
  // Trained, masked: optimizer state and masks must survive every failed call byte for byte.
  await fit(model, { x, y }, { loss: 'softmaxCrossEntropy', optimizer: adam(), epochs: 1, batchSize: 8 });
  pruneWeights(model, { sparsity: 0.3 });
});

afterAll(() => {
  model.dispose();
  tf.dispose([x, y, xWide, yBad, yOneHot5]);
});

const userError = new Error('user function failed');

const throwingScore: ImportanceScore = {
  name: 'throws',
  needsData: false,
  weights: () => {
    throw userError;
  },
};
/** A score that forgets one of the requested parameters. */
const missingScore: ImportanceScore = {
  name: 'missing',
  needsData: false,
  weights: (m, params) => new Map(params.slice(1).map((k) => [k, tf.abs(m.param(k).value)])),
};
/** A score whose tensors have the wrong shape. */
const wrongShapeScore: ImportanceScore = {
  name: 'wrongShape',
  needsData: false,
  weights: (_m, params) => new Map(params.map((k) => [k, tf.ones([2])])),
};
const throwingLoss: LossFn = () => {
  throw userError;
};

describe('pruneWeights', () => {
  it('refuses bad input with a typed error, no leak, model unchanged', async () => {
    const good = (): { x: Tensor; y: Tensor } => ({ x, y });
    expect(await failureProblems([
      ['sparsity 1', () => pruneWeights(model, { sparsity: 1 }), 'INVALID_ARGUMENT'],
      ['sparsity -0.1', () => pruneWeights(model, { sparsity: -0.1 }), 'INVALID_ARGUMENT'],
      ['sparsity NaN', () => pruneWeights(model, { sparsity: Number.NaN }), 'INVALID_ARGUMENT'],
      ['unknown scope', () => pruneWeights(model, { sparsity: 0.5, scope: 'model' as never }), 'INVALID_ARGUMENT'],
      ['minKeep -1', () => pruneWeights(model, { sparsity: 0.5, minKeep: -1 }), 'INVALID_ARGUMENT'],
      ['sparsityPerParam 2', () => pruneWeights(model, { sparsity: 0.5, scope: 'layer', sparsityPerParam: { 'fc1/kernel': 2 } }), 'INVALID_ARGUMENT'],
      ['sparsityPerParam with global scope', () => pruneWeights(model, { sparsity: 0.5, sparsityPerParam: { 'fc1/kernel': 0.2 } }), 'INVALID_ARGUMENT'],
      ['sparsityPerParam names an unpruned param', () => pruneWeights(model, { sparsity: 0.5, scope: 'layer', params: ['fc1/kernel'], sparsityPerParam: { 'fc2/kernel': 0.2 } }), 'INVALID_ARGUMENT'],
      ['unknown param', () => pruneWeights(model, { sparsity: 0.5, params: ['fc1/kernel', 'nope/kernel'] }), 'UNKNOWN_PARAM'],
      ['empty params', () => pruneWeights(model, { sparsity: 0.5, params: [] }), 'INVALID_ARGUMENT'],
      ['unknown score', () => pruneWeights(model, { sparsity: 0.5, score: 'nope' }), 'INVALID_ARGUMENT'],
      ['taylor without batches', () => pruneWeights(model, { sparsity: 0.5, score: 'taylor' }), 'INVALID_ARGUMENT'],
      ['snip with an empty batch list', () => pruneWeights(model, { sparsity: 0.5, score: 'snip', context: { batches: [] } }), 'INVALID_ARGUMENT'],
      ['taylor, x of the wrong width', () => pruneWeights(model, { sparsity: 0.5, score: 'taylor', context: { batches: [{ x: xWide, y }] } }), 'SHAPE_MISMATCH'],
      ['taylor, targets of the wrong length', () => pruneWeights(model, { sparsity: 0.5, score: 'taylor', context: { batches: [{ x, y: yBad }] } }), 'DATA_MISMATCH'],
      ['taylor, second batch bad (first accumulated)', () => pruneWeights(model, { sparsity: 0.5, score: 'taylor', context: { batches: [good(), { x, y: yOneHot5 }] } }), 'DATA_MISMATCH'],
      ['taylorGroup, second batch bad', () => pruneWeights(model, { sparsity: 0.5, score: taylorGroup, scope: 'layer', context: { batches: [good(), { x: xWide, y }] } }), 'SHAPE_MISMATCH'],
      ['snip, throwing loss', () => pruneWeights(model, { sparsity: 0.5, score: snip, context: { batches: [good()], loss: throwingLoss } }), userError],
      ['taylor, unknown loss name', () => pruneWeights(model, { sparsity: 0.5, score: taylor, context: { batches: [good()], loss: 'nope' as never } }), 'INVALID_ARGUMENT'],
      ['custom score that throws', () => pruneWeights(model, { sparsity: 0.5, score: throwingScore }), userError],
      ['custom score missing a param', () => pruneWeights(model, { sparsity: 0.5, score: missingScore }), 'INVALID_ARGUMENT'],
      ['custom score of the wrong shape', () => pruneWeights(model, { sparsity: 0.5, score: wrongShapeScore }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });
});

describe('pruneUnits', () => {
  it('refuses bad input with a typed error, no leak, model unchanged', async () => {
    expect(await failureProblems([
      ['fraction 1', () => pruneUnits(model, { fraction: 1 }), 'INVALID_ARGUMENT'],
      ['fraction as a string', () => pruneUnits(model, { fraction: '0.5' as never }), 'INVALID_ARGUMENT'],
      ['unknown scope', () => pruneUnits(model, { fraction: 0.5, scope: 'all' as never }), 'INVALID_ARGUMENT'],
      ['minUnits NaN', () => pruneUnits(model, { fraction: 0.5, minUnits: Number.NaN }), 'INVALID_ARGUMENT'],
      ['unknown group', () => pruneUnits(model, { fraction: 0.5, groups: ['fc1', 'nope'] }), 'UNKNOWN_GROUP'],
      ['frozen output group', () => pruneUnits(model, { fraction: 0.5, groups: ['fc3'] }), 'FROZEN_GROUP'],
      ['no groups', () => pruneUnits(model, { fraction: 0.5, groups: [] }), 'INVALID_ARGUMENT'],
      ['unknown score', () => pruneUnits(model, { fraction: 0.5, score: 'nope' }), 'INVALID_ARGUMENT'],
      ['taylor without data', () => pruneUnits(model, { fraction: 0.5, score: 'taylor' }), 'INVALID_ARGUMENT'],
      ['taylor, wrong targets', () => pruneUnits(model, { fraction: 0.5, score: 'taylor', context: { batches: [{ x, y: yBad }] } }), 'DATA_MISMATCH'],
      ['taylorGroup, second batch of the wrong width', () => pruneUnits(model, { fraction: 0.5, score: 'taylorGroup', scope: 'global', context: { batches: [{ x, y }, { x: xWide, y }] } }), 'SHAPE_MISMATCH'],
      ['taylor, throwing loss', () => pruneUnits(model, { fraction: 0.5, score: 'taylor', context: { batches: [{ x, y }], loss: throwingLoss } }), userError],
      ['custom score that throws', () => pruneUnits(model, { fraction: 0.5, score: throwingScore }), userError],
      ['custom score missing a param', () => pruneUnits(model, { fraction: 0.5, score: missingScore, groups: ['fc1'] }), 'INVALID_ARGUMENT'],
      ['custom score of the wrong shape', () => pruneUnits(model, { fraction: 0.5, score: wrongShapeScore, groups: ['fc2'] }), 'INVALID_ARGUMENT'],
      ['score missing from the given registry', () => pruneUnits(model, { fraction: 0.5, score: 'throws', scores: createScoreRegistry() }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });
});

describe('groupUnitScores', () => {
  it('refuses bad scores with a typed error and no leak', async () => {
    const groups = [model.group('fc1'), model.group('fc2')];
    expect(await failureProblems([
      ['score that throws', () => groupUnitScores(model, groups, throwingScore, {}), userError],
      ['score missing a param', () => groupUnitScores(model, groups, missingScore, {}), 'INVALID_ARGUMENT'],
      ['score of the wrong shape', () => groupUnitScores(model, groups, wrongShapeScore, {}), 'INVALID_ARGUMENT'],
      ['taylor without batches', () => groupUnitScores(model, groups, taylor, {}), 'INVALID_ARGUMENT'],
      ['taylor, second batch bad', () => groupUnitScores(model, groups, taylor, { batches: [{ x, y }, { x, y: yBad }] }), 'DATA_MISMATCH'],
    ], { model })).toEqual([]);
  });
});

describe('removeUnits', () => {
  it('refuses bad selections with a typed error, no leak, model unchanged', async () => {
    expect(await failureProblems([
      ['not an object', () => removeUnits(model, null as never), 'INVALID_ARGUMENT'],
      ['units not an array', () => removeUnits(model, { fc1: 3 as never }), 'INVALID_ARGUMENT'],
      ['unknown group', () => removeUnits(model, { nope: [0] }), 'UNKNOWN_GROUP'],
      ['index out of range', () => removeUnits(model, { fc1: [0, 8] }), 'UNIT_INDEX_OUT_OF_RANGE'],
      ['negative index', () => removeUnits(model, { fc1: [-1] }), 'UNIT_INDEX_OUT_OF_RANGE'],
      ['duplicate index', () => removeUnits(model, { fc2: [1, 1] }), 'DUPLICATE_UNIT_INDEX'],
      ['every unit of a group', () => removeUnits(model, { fc2: [0, 1, 2, 3, 4] }), 'REMOVE_ALL_UNITS'],
      ['frozen group', () => removeUnits(model, { fc3: [0] }), 'FROZEN_GROUP'],
      ['valid group then an invalid one (atomic)', () => removeUnits(model, { fc1: [0, 1], fc2: [9] }), 'UNIT_INDEX_OUT_OF_RANGE'],
    ], { model })).toEqual([]);
  });
});

describe('materialize', () => {
  it('a probe of the wrong shape is refused with a typed error, no leak, model unchanged', async () => {
    // A unit with all its producing weights masked, so the probe is run.
    const dead = Model.create(graph(), { seed: 4 });
    dead.edit((tx) => {
      const keep = tf.tidy(() => tf.concat([tf.zeros([6, 1]), tf.ones([6, 7])], 1));
      tx.setMask('fc1/kernel', keep);
      keep.dispose();
    });
    const rank1 = tf.zeros([6]);
    const code = /SHAPE_MISMATCH|ARITY|INVALID_ARGUMENT|DATA_MISMATCH/;
    expect(await failureProblems([
      ['probe of the wrong width', () => materialize(dead, { ignoreBias: true, probe: xWide }), code],
      ['probe of the wrong rank', () => materialize(dead, { ignoreBias: true, probe: rank1 }), code],
      ['two probes for one input', () => materialize(dead, { ignoreBias: true, probe: [x, x] }), code],
    ], { model: dead })).toEqual([]);
    rank1.dispose();
    dead.dispose();
  });
});

describe('schedules', () => {
  it('gradualPruning and pruneIteratively refuse bad options before any change and leak nothing', async () => {
    const retrain = (): void => undefined;
    expect(await failureProblems([
      ['gradualPruning, finalSparsity 1', () => gradualPruning({ schedule: { initialSparsity: 0, finalSparsity: 1, beginStep: 0, endStep: 10 } }), 'INVALID_ARGUMENT'],
      ['gradualPruning, endStep before beginStep', () => gradualPruning({ schedule: { initialSparsity: 0, finalSparsity: 0.5, beginStep: 5, endStep: 2 } }), 'INVALID_ARGUMENT'],
      ['gradualPruning, frequency 0', () => gradualPruning({ schedule: { initialSparsity: 0, finalSparsity: 0.5, beginStep: 0, endStep: 2, frequency: 0 } }), 'INVALID_ARGUMENT'],
      ['pruneIteratively, finalSparsity 1', () => pruneIteratively(model, { finalSparsity: 1, rounds: 2, retrain }), 'INVALID_ARGUMENT'],
      ['pruneIteratively, rounds 0', () => pruneIteratively(model, { finalSparsity: 0.5, rounds: 0, retrain }), 'INVALID_ARGUMENT'],
      ['pruneIteratively, per-param final sparsity 1.5', () => pruneIteratively(model, { finalSparsity: 0.5, scope: 'layer', finalSparsityPerParam: { 'fc1/kernel': 1.5 }, rounds: 2, retrain }), 'INVALID_ARGUMENT'],
      ['pruneIteratively, unknown param', () => pruneIteratively(model, { finalSparsity: 0.5, params: ['nope/kernel'], rounds: 2, retrain }), 'UNKNOWN_PARAM'],
      ['pruneIteratively, unknown score', () => pruneIteratively(model, { finalSparsity: 0.5, score: 'nope', rounds: 2, retrain }), 'INVALID_ARGUMENT'],
    ], { model })).toEqual([]);
  });

  it('a gradualPruning callback with a bad score fails fit with a typed error and no leak', async () => {
    const m = Model.create(graph(), { seed: 5 });
    const callback = gradualPruning({ schedule: { initialSparsity: 0, finalSparsity: 0.5, beginStep: 1, endStep: 2, frequency: 1 }, score: 'taylor' });
    const { error, leaked } = await leakOnThrow(() => fit(m, { x, y }, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 8, callbacks: [callback] }));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    // The one step taken made Adam's slots (m and v for every parameter); nothing else is left.
    expect(leaked).toBe(2 * m.paramKeys().length);
    m.dispose();
  });

  it('pruneIteratively whose retrain throws passes the error on and leaks nothing', async () => {
    let rounds = -1;
    const { error, leaked } = await leakOnThrow(async () => {
      const m = Model.create(graph(), { seed: 6 });
      try {
        await pruneIteratively(m, {
          finalSparsity: 0.5,
          rounds: 2,
          retrain: () => {
            throw userError;
          },
        });
      } finally {
        rounds = m.journal.filter((e) => e.technique === 'prune').length; // the round that completed stays
        m.dispose();
      }
    });
    expect(error).toBe(userError);
    expect(leaked).toBe(0);
    expect(rounds).toBe(1);
  });
});

describe('findLotteryTicket', () => {
  it('bad options and failing callbacks: typed errors or the callback error, no model or snapshot left alive', async () => {
    const create = (seed: number): Model => Model.create(graph(), { seed });
    const train = async (): Promise<void> => undefined;
    const evaluate = (): number => 0.5;
    const fail = (): never => {
      throw userError;
    };
    const cases: FailureCase[] = [
      ['rounds 0', () => findLotteryTicket({ create, train, evaluate, rounds: 0 }), 'INVALID_ARGUMENT'],
      ['rate 1', () => findLotteryTicket({ create, train, evaluate, rounds: 1, rate: 1 }), 'INVALID_ARGUMENT'],
      ['outputRate 0', () => findLotteryTicket({ create, train, evaluate, rounds: 1, outputRate: 0 }), 'INVALID_ARGUMENT'],
      ['ratePerParam NaN', () => findLotteryTicket({ create, train, evaluate, rounds: 1, ratePerParam: { 'fc1/kernel': Number.NaN } }), 'INVALID_ARGUMENT'],
      ['rewind neither init nor a function', () => findLotteryTicket({ create, train, evaluate, rounds: 1, rewind: 'late' as never }), 'INVALID_ARGUMENT'],
      ['create throws', () => findLotteryTicket({ create: fail, train, evaluate, rounds: 1 }), userError],
      ['rewind throws', () => findLotteryTicket({ create, train, evaluate, rounds: 1, rewind: async () => fail() }), userError],
      ['train throws', () => findLotteryTicket({ create, train: async () => fail(), evaluate, rounds: 1 }), userError],
      ['evaluate throws in round 1', () => findLotteryTicket({ create, train, evaluate: (() => { let n = 0; return () => (++n === 2 ? fail() : 0.5); })(), rounds: 2 }), userError],
      ['control training throws', () => findLotteryTicket({ create, train: (() => { let n = 0; return async () => void (++n === 3 && fail()); })(), evaluate, rounds: 1, control: true }), userError],
      ['onRound throws', () => findLotteryTicket({ create, train, evaluate, rounds: 1, onRound: fail }), userError],
    ];
    expect(await failureProblems(cases, { model })).toEqual([]);
  });
});

describe('pruneReport', () => {
  it('an input of the wrong shape or bad repeats is refused with a typed error and no leak', async () => {
    expect(await failureProblems([
      ['repeats 0', () => pruneReport(model, { input: x, repeats: 0 }), 'INVALID_ARGUMENT'],
      ['input of the wrong width', () => pruneReport(model, { input: xWide, repeats: 1 }), 'SHAPE_MISMATCH'],
    ], { model })).toEqual([]);
  });
});

describe('scores called directly', () => {
  it('refuse missing data with a typed error and leak nothing', async () => {
    const params = ['fc1/kernel', 'fc2/kernel'];
    expect(await failureProblems([
      ['taylor.weights without batches', () => taylor.weights(model, params, {}), 'INVALID_ARGUMENT'],
      ['snip.weights, bad targets', () => snip.weights(model, params, { batches: [{ x, y: yBad }] }), 'DATA_MISMATCH'],
      ['taylor.weights, second batch bad', () => taylor.weights(model, params, { batches: [{ x, y }, { x: xWide, y }] }), 'SHAPE_MISMATCH'],
      ['l1.weights, unknown param', () => l1.weights(model, ['nope/kernel'], {}), 'UNKNOWN_PARAM'],
    ], { model })).toEqual([]);
  });
});
