import { describe, it, expect, beforeAll } from 'vitest';
import { Model, tf, adam, saveToBuffer, loadFromBuffer, isRsError, lenet300100, charTransformer, createRng, type GraphDef } from '@rs/core';
import { execute } from '@rs/core/extend';
import { install } from '@rs/backend-cpu';
import { loadMnist } from '@rs/datasets';
import {
  addExit,
  exitOrder,
  earlyExitPredict,
  setExitPolicy,
  exitPolicy,
  calibrateThreshold,
  multiExitStep,
  Slimmable,
  transformerBlocks,
  skipAlias,
  keepAtDepth,
  layerDropStep,
  lossWithAlias,
  addSkipGate,
  gatedPredict,
  gatedStep,
} from './index';

beforeAll(async () => {
  await install();
});

const mnist = loadMnist();
const digits = (split: 'train' | 'test', n: number, offset = 0) => ({
  x: tf.tensor2d(mnist[split].x.subarray(offset * 784, (offset + n) * 784), [n, 784]),
  y: mnist[split].y.slice(offset, offset + n),
});

const maxDiff = (a: tf.Tensor, b: tf.Tensor): number => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(isRsError(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected an RsError ${code}`);
}

describe('early exit', () => {
  it('addExit is one journaled edit; exits come in execution order; unknown node is a typed error and changes nothing', () => {
    const model = Model.create(lenet300100({ hidden: [32, 16] }), { seed: 1 });
    const before = JSON.stringify(model.graph);
    expectCode(() => addExit(model, { at: 'nope', classes: 10 }), 'UNKNOWN_NODE');
    expect(JSON.stringify(model.graph)).toBe(before);
    expect(model.journal.length).toBe(0);
    const id = addExit(model, { at: 'relu1', classes: 10, hidden: [8] });
    expect(exitOrder(model)).toEqual([id, 'fc3']);
    expect(model.journal.length).toBe(1);
    expect(model.journal[0].technique).toBe('dynamic');
    // The trunk is untouched: the final output is what it was.
    const x = tf.randomNormal([4, 784], 0, 1, 'float32', 3);
    const plain = Model.create(lenet300100({ hidden: [32, 16] }), { seed: 1 });
    const run = model.run(x);
    expect(maxDiff(run.outputs[1], plain.apply(x))).toBeLessThan(1e-6);
    tf.dispose([x, ...run.outputs]);
    model.dispose();
    plain.dispose();
  });

  it('per-sample exit in a batch gives the same outputs as each sample alone (1e-5), in input order, without leaks', () => {
    const model = Model.create(lenet300100({ hidden: [32, 16] }), { seed: 2 });
    addExit(model, { at: 'relu1', classes: 10 });
    const { x } = digits('test', 40);
    // A threshold at the median entropy of the exit sends about half of the rows out early.
    const cal = calibrateThreshold(model, x, new Int32Array(40), { rule: 'entropy', targetAccuracy: 0 });
    const median = cal.curve[Math.floor(cal.curve.length / 2)].threshold;
    const tensorsBefore = tf.memory().numTensors;
    const batched = earlyExitPredict(model, x, { rule: 'entropy', thresholds: median });
    expect(tf.memory().numTensors).toBe(tensorsBefore + 1);
    const early = [...batched.exitIndex].filter((e) => e === 0).length;
    expect(early).toBeGreaterThan(5);
    expect(early).toBeLessThan(35);
    let worst = 0;
    for (let i = 0; i < 40; i++) {
      const xi = tf.slice(x, i, 1);
      const alone = earlyExitPredict(model, xi, { rule: 'entropy', thresholds: median });
      expect(alone.exitIndex[0]).toBe(batched.exitIndex[i]);
      const row = tf.slice(batched.logits, i, 1);
      worst = Math.max(worst, maxDiff(row, alone.logits));
      // And each row equals the full forward pass of the exit it took.
      const full = model.run(xi);
      worst = Math.max(worst, maxDiff(row, full.outputs[batched.exitIndex[i]]));
      tf.dispose([xi, alone.logits, row, ...full.outputs]);
    }
    expect(worst).toBeLessThan(1e-5);
    batched.logits.dispose();
    x.dispose();
    model.dispose();
  });

  it('a stored exit policy travels with the saved model and gives the same early-exit predictions', () => {
    const model = Model.create(lenet300100({ hidden: [32, 16] }), { seed: 4 });
    const x0 = tf.zeros([1, 784]);
    expectCode(() => setExitPolicy(model, { rule: 'entropy', thresholds: 0.5 }), 'INVALID_ARGUMENT'); // no exit yet
    expectCode(() => earlyExitPredict(model, x0), 'INVALID_ARGUMENT');
    addExit(model, { at: 'relu1', classes: 10 });
    const journal = model.journal.length;
    expectCode(() => setExitPolicy(model, { rule: 'entropy', thresholds: 99 }), 'INVALID_ARGUMENT');
    expectCode(() => setExitPolicy(model, { rule: 'loudest' as 'entropy', thresholds: 0.1 }), 'INVALID_ARGUMENT');
    expect(model.journal.length).toBe(journal);
    const { x } = digits('test', 30);
    const cal = calibrateThreshold(model, x, new Int32Array(30), { rule: 'entropy', targetAccuracy: 0 });
    const median = cal.curve[Math.floor(cal.curve.length / 2)].threshold;
    setExitPolicy(model, { rule: 'entropy', thresholds: median });
    expect(model.journal.length).toBe(journal + 1);
    expect(exitPolicy(model)).toEqual({ rule: 'entropy', thresholds: [median] });
    const copy = loadFromBuffer(saveToBuffer(model));
    const a = earlyExitPredict(model, x, { rule: 'entropy', thresholds: median });
    const b = earlyExitPredict(copy, x);
    expect([...b.exitIndex]).toEqual([...a.exitIndex]);
    expect(new Set(a.exitIndex).size).toBe(2); // the median sends some rows out and keeps others
    expect(maxDiff(a.logits, b.logits)).toBeLessThan(1e-6);
    tf.dispose([a.logits, b.logits, x, x0]);
    copy.dispose();
    model.dispose();
  });

  it('thresholds out of range and wrong counts are typed errors', () => {
    const model = Model.create(lenet300100({ hidden: [16, 8] }), { seed: 3 });
    addExit(model, { at: 'relu1', classes: 10 });
    const x = tf.zeros([2, 784]);
    expectCode(() => earlyExitPredict(model, x, { rule: 'confidence', thresholds: 1.5 }), 'INVALID_ARGUMENT');
    expectCode(() => earlyExitPredict(model, x, { rule: 'entropy', thresholds: -0.1 }), 'INVALID_ARGUMENT');
    expectCode(() => earlyExitPredict(model, x, { rule: 'entropy', thresholds: Math.log(10) + 0.01 }), 'INVALID_ARGUMENT');
    expectCode(() => earlyExitPredict(model, x, { rule: 'entropy', thresholds: [0.1, 0.2] }), 'INVALID_ARGUMENT');
    expectCode(() => calibrateThreshold(model, x, new Int32Array(2), { rule: 'confidence', targetAccuracy: 2 }), 'INVALID_ARGUMENT');
    x.dispose();
    model.dispose();
  });

  it('joint training on MNIST: both exits learn; calibration meets its accuracy target on the curve it reports', () => {
    const model = Model.create(lenet300100({ hidden: [64, 32] }), { seed: 4 });
    addExit(model, { at: 'relu1', classes: 10 });
    const train = digits('train', 2000);
    const y = tf.tensor1d(train.y, 'int32');
    const optimizer = adam({ learningRate: 5e-3 });
    const before = tf.memory().numTensors;
    for (let epoch = 0; epoch < 3; epoch++) {
      for (let s = 0; s < 2000; s += 100) {
        const xb = tf.slice(train.x, s, 100);
        const yb = tf.slice(y, s, 100);
        multiExitStep(model, xb, yb, optimizer, [1, 0.5]);
        tf.dispose([xb, yb]);
      }
    }
    const slotTensors = model.paramKeys().filter((k) => model.param(k).trainable).length * 2;
    expect(tf.memory().numTensors).toBe(before + slotTensors);
    const val = digits('test', 1000);
    const cal = calibrateThreshold(model, val.x, val.y, { rule: 'confidence', maxDrop: 0.005 });
    // A 784-64-10 exit and a 784-64-32-10 network reach > 85% after 3 epochs on 2,000 digits.
    expect(cal.fullAccuracy).toBeGreaterThan(0.85);
    expect(cal.accuracy).toBeGreaterThanOrEqual(cal.fullAccuracy - 0.005 - 1e-9);
    expect(cal.earlyExitRate).toBeGreaterThan(0.3);
    // The batched predictor agrees with the sweep at the chosen threshold.
    const { logits, exitIndex } = earlyExitPredict(model, val.x, { rule: 'confidence', thresholds: cal.threshold });
    const pred = tf.tidy(() => tf.argMax(logits, -1)).dataSync();
    const acc = [...pred].filter((p, i) => p === val.y[i]).length / 1000;
    expect(acc).toBeCloseTo(cal.accuracy, 6);
    expect([...exitIndex].filter((e) => e === 0).length / 1000).toBeCloseTo(cal.earlyExitRate, 6);
    tf.dispose([logits, train.x, y, val.x]);
    model.dispose();
  });
});

const bnMlp = (h: number): GraphDef => ({
  inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }],
  nodes: [
    { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: h } },
    { id: 'bn1', op: 'batchNorm', inputs: ['fc1'], attrs: {} },
    { id: 'relu1', op: 'relu', inputs: ['bn1'], attrs: {} },
    { id: 'fc2', op: 'dense', inputs: ['relu1'], attrs: { units: 10 } },
  ],
  outputs: ['fc2'],
});

describe('slimmable', () => {
  it('full width is the model itself; narrow widths equal a network built from the first units; untrained width is a typed error', () => {
    const model = Model.create(bnMlp(16), { seed: 5 });
    const slim = new Slimmable(model, { widths: [0.25, 0.5, 1], groups: ['fc1'] });
    const x = tf.randomNormal([6, 784], 0, 1, 'float32', 1);
    const full = slim.apply(x, 1);
    const ref = model.apply(x);
    expect(maxDiff(full, ref)).toBeLessThan(1e-6);
    expect(slim.unitsAt(0.25).get('fc1')).toBe(4);
    const small = Model.create(bnMlp(4), {
      seed: 0,
      params: Object.fromEntries(
        model.paramKeys().map((k) => {
          const v = model.param(k).value;
          return [k, k === 'fc2/kernel' ? tf.slice(v, [0, 0], [4, 10]) : k === 'fc1/kernel' ? tf.slice(v, [0, 0], [784, 4]) : k === 'fc2/bias' ? v : tf.slice(v, 0, 4)];
        }),
      ),
    });
    const narrow = slim.apply(x, 0.25);
    expect(maxDiff(narrow, small.apply(x))).toBeLessThan(1e-5);
    expectCode(() => slim.apply(x, 0.75), 'INVALID_ARGUMENT');
    expectCode(() => new Slimmable(model, { widths: [0.5], groups: ['fc1'] }), 'INVALID_ARGUMENT');
    expectCode(() => new Slimmable(model, { widths: [0.5, 1], groups: ['nope'] }), 'UNKNOWN_GROUP');
    tf.dispose([x, full, ref, narrow]);
    model.dispose();
    small.dispose();
  });

  it('sandwich training on MNIST: every width learns, statistics are per width, importance ordering preserves the full network, no leaks', () => {
    const model = Model.create(bnMlp(64), { seed: 6 });
    const slim = new Slimmable(model, { widths: [0.25, 0.5, 0.75, 1], groups: ['fc1'] });
    const train = digits('train', 2000);
    const y = tf.tensor1d(train.y, 'int32');
    const optimizer = adam({ learningRate: 1e-2 });
    const step = (s: number) => {
      const xb = tf.slice(train.x, s, 100);
      const yb = tf.slice(y, s, 100);
      slim.step(xb, yb, optimizer);
      tf.dispose([xb, yb]);
    };
    for (let s = 0; s < 2000; s += 100) step(s);
    const before = tf.memory().numTensors;
    for (let s = 0; s < 2000; s += 100) step(s);
    expect(tf.memory().numTensors).toBe(before);
    const test = digits('test', 1000);
    // A 784-16-10 network reaches > 80% on MNIST after 2 epochs on 2,000 digits; wider ones more.
    const calibration = tf.slice(train.x, 0, 500);
    const beforeCalibration = tf.memory().numTensors;
    slim.recalibrate(calibration);
    expect(tf.memory().numTensors).toBe(beforeCalibration);
    // After recalibration the width-0.5 statistics are the exact moments of its fc1 outputs.
    const exact = tf.tidy(() => tf.moments(execute(model.plan, [calibration], slim.params(0.5), { training: false, rng: model.rng, targets: ['fc1'] }).outputs[0], [0]).mean);
    const stored = tf.tidy(() => tf.clone(slim.params(0.5).get('bn1/movingMean') as tf.Tensor));
    expect(stored.shape).toEqual([32]);
    expect(maxDiff(exact, stored)).toBeLessThan(1e-5);
    tf.dispose([calibration, exact, stored]);
    const accuracies = [0.25, 0.5, 0.75, 1].map((w) => slim.accuracy(test.x, test.y, w));
    for (const a of accuracies) expect(a).toBeGreaterThan(0.8);
    const x = tf.slice(test.x, 0, 8);
    const a = slim.apply(x, 1);
    slim.orderByImportance();
    const b = slim.apply(x, 1);
    expect(maxDiff(a, b)).toBeLessThan(1e-5);
    expect(model.journal.at(-1)?.reason).toContain('importance');
    tf.dispose([a, b, x, train.x, y, test.x]);
    slim.dispose();
    model.dispose();
  });
});

describe('adaptive depth and conditional computation', () => {
  const tiny = () => Model.create(charTransformer({ vocabSize: 12, context: 8, dim: 16, heads: 2, layers: 4, ffn: 32 }), { seed: 7 });
  const tokens = (n: number, seed: number) => {
    const rng = createRng(seed);
    const a = Int32Array.from({ length: n * 9 }, () => rng.int(12));
    const x = tf.tensor2d(Int32Array.from({ length: n * 8 }, (_, i) => a[Math.floor(i / 8) * 9 + (i % 8)]), [n, 8], 'int32');
    const y = tf.tensor2d(Int32Array.from({ length: n * 8 }, (_, i) => a[Math.floor(i / 8) * 9 + (i % 8) + 1]), [n, 8], 'int32');
    return { x, y };
  };

  it('skipping blocks equals removing them from the graph; LayerDrop leaves dropped blocks untouched', () => {
    const model = tiny();
    const blocks = transformerBlocks(model);
    expect(blocks.length).toBe(4);
    expect(keepAtDepth(4, 2)).toEqual([0, 2]);
    const { x, y } = tokens(4, 1);
    const alias = skipAlias(blocks, [0, 2]);
    const skipped = model.apply(x, { targets: ['head'], alias });
    const cut = Model.create(model.graph, { seed: 0, params: Object.fromEntries(model.paramKeys().map((k) => [k, model.param(k).value])) });
    cut.edit((tx) => {
      tx.removeNode('block3.res2', { bypass: 'block2.res2' });
      tx.removeNode('block1.res2', { bypass: 'block0.res2' });
    });
    const removed = cut.apply(x);
    expect(maxDiff(skipped, removed)).toBeLessThan(1e-5);
    expect(lossWithAlias(model, x, y, new Map())).toBeGreaterThan(0);
    expectCode(() => keepAtDepth(4, 5), 'INVALID_ARGUMENT');
    expectCode(() => skipAlias(blocks, [7]), 'INVALID_ARGUMENT');
    // p close to 1 drops blocks; their weights must not move.
    const rng = createRng(3);
    const snapshot = new Map(model.paramKeys().map((k) => [k, tf.clone(model.param(k).value)]));
    const { dropped } = layerDropStep(model, x, y, adam({ learningRate: 1e-2 }), { blocks, p: 0.5, rng });
    expect(dropped.length).toBeGreaterThan(0);
    for (const [k, v] of snapshot) {
      const block = Number(/^block(\d+)\./.exec(k)?.[1] ?? -1);
      const moved = maxDiff(v, model.param(k).value) > 0;
      if (dropped.includes(block)) expect(moved).toBe(false);
      else if (k.startsWith('head/')) expect(moved).toBe(true);
    }
    expectCode(() => layerDropStep(model, x, y, adam(), { blocks, p: 1, rng }), 'INVALID_ARGUMENT');
    tf.dispose([x, y, skipped, removed, ...snapshot.values()]);
    model.dispose();
    cut.dispose();
  });

  it('gated blocks run only for rows whose gate is on and match the full computation row by row', () => {
    const graph: GraphDef = {
      inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
      nodes: [
        { id: 'in', op: 'dense', inputs: ['x'], attrs: { units: 5 } },
        { id: 'r0', op: 'relu', inputs: ['in'], attrs: {} },
        { id: 'b1', op: 'dense', inputs: ['r0'], attrs: { units: 5 } },
        { id: 'res1', op: 'add', inputs: ['r0', 'b1'], attrs: {} },
        { id: 'out', op: 'dense', inputs: ['res1'], attrs: { units: 3 } },
      ],
      outputs: ['out'],
    };
    const model = Model.create(graph, { seed: 8 });
    expectCode(() => addSkipGate(model, { input: 'r0', output: 'missing' }), 'UNKNOWN_NODE');
    const gated = addSkipGate(model, { input: 'r0', output: 'res1' }, { bias: 0 });
    const x = tf.randomNormal([16, 6], 0, 1, 'float32', 2);
    const { output, computedRows } = gatedPredict(model, x, [gated]);
    const [gate, on, off] = [model.apply(x, { targets: [gated.gate] }), model.apply(x, { targets: ['out'] }), model.apply(x, { targets: ['out'], alias: new Map([['res1', 'r0']]) })];
    const g = gate.dataSync();
    const expected = tf.tidy(() => tf.where(tf.greater(tf.tile(gate, [1, 3]), 0), on, off));
    const opened = [...g].filter((v) => v > 0).length;
    expect(computedRows[0]).toBe(opened);
    expect(opened).toBeGreaterThan(0);
    expect(opened).toBeLessThan(16);
    expect(maxDiff(output, expected)).toBeLessThan(1e-5);
    // Training with a cost on open gates closes some of them.
    const y = tf.tensor1d(Int32Array.from({ length: 16 }, (_, i) => i % 3), 'int32');
    const optimizer = adam({ learningRate: 5e-2 });
    for (let i = 0; i < 30; i++) gatedStep(model, x, y, optimizer, [gated], { cost: 5 });
    const after = gatedPredict(model, x, [gated]);
    expect(after.computedRows[0]).toBeLessThan(opened);
    tf.dispose([x, y, output, gate, on, off, expected, after.output]);
    model.dispose();
  });
});
