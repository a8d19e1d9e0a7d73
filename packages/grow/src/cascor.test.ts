import { describe, it, expect, beforeAll } from 'vitest';
import { tf, isRsError, saveToBuffer, loadFromBuffer, type Model } from '@rs/core';
import { install } from '@rs/backend-cpu';
import { twoSpirals } from '@rs/datasets';
import { cascadeCorrelation, type CascorData } from './cascor';

beforeAll(async () => {
  await install();
});

const spirals = twoSpirals();

/** Model output (sigmoid, 0..1) on the data as a Float32Array. */
const modelOutputs = (model: Model, data: CascorData & { count: number }, inputSize: number): Float32Array =>
  tf.tidy(() => model.apply(tf.tensor2d(Float32Array.from(data.x), [data.count, inputSize])).dataSync() as Float32Array);

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

describe('cascadeCorrelation', () => {
  it('solves two-spirals and mirrors the network into a journaled Model (one edit per unit)', () => {
    const tensors = tf.memory().numTensors;
    const result = cascadeCorrelation(spirals, { seed: 0 });
    const model = result.model as Model;
    expect(result.solved).toBe(true);
    expect(result.errors).toBe(0);
    expect(result.accuracy).toBe(1);
    expect(result.hiddenUnits).toBeGreaterThan(5);
    expect(result.hiddenUnits).toBeLessThanOrEqual(25);
    expect(result.epochs).toBe(result.outputEpochs + result.candidateEpochs);
    expect(result.units.reduce((s, u) => s + u.candidateEpochs, 0)).toBe(result.candidateEpochs);
    expect(result.units.map((u) => u.index)).toEqual([...Array(result.hiddenUnits).keys()]);

    // Same function: the Model's sigmoid output equals the JS network's, on all 194 points.
    const js = result.network.predict(spirals.x);
    const out = modelOutputs(model, spirals, 2);
    expect(maxDiff(out, js)).toBeLessThan(1e-5);
    for (let p = 0; p < spirals.count; p++) expect(out[p] > 0.5).toBe(spirals.y[p] === 1);

    // One 'grow' journal entry per installed unit, in order.
    expect(model.journal).toHaveLength(result.hiddenUnits);
    model.journal.forEach((entry, k) => {
      expect(entry.technique).toBe('grow');
      expect(entry.reason).toMatch(new RegExp(`^cascade-correlation: install unit ${k} \\(correlation \\d`));
      expect(entry.changes.map((c) => c.kind)).toEqual(['insertNode', 'insertNode', 'insertNode', 'replaceNode', 'setTrainable']);
      expect(entry.params.after - entry.params.before).toBe(2 + k + 1 + 1); // the unit's fan-in + bias, one output weight
    });

    // Cascade structure: h_k reads [x, h_0..h_{k-1}] and is frozen; the output reads everything.
    const K = result.hiddenUnits;
    const graph = model.graph;
    expect(graph.nodes).toHaveLength(2 + 3 * K);
    for (let k = 0; k < K; k++) {
      expect(graph.nodes.find((n) => n.id === `h${k}.net`)?.inputs).toEqual([k === 0 ? 'x' : `cat${k}`]);
      expect(model.param(`h${k}.net/kernel`).value.shape).toEqual([2 + k, 1]);
      expect(model.param(`h${k}.net/kernel`).trainable).toBe(false);
      expect(model.param(`h${k}.net/bias`).trainable).toBe(false);
    }
    expect(graph.nodes.find((n) => n.id === 'out')?.inputs).toEqual([`cat${K}`]);
    expect(model.param('out/kernel').value.shape).toEqual([2 + K, 1]);
    expect(model.param('out/kernel').trainable).toBe(true);

    // A real model: save/load keeps function and journal.
    const copy = loadFromBuffer(saveToBuffer(model));
    expect(maxDiff(modelOutputs(copy, spirals, 2), out)).toBe(0);
    expect(copy.journal).toHaveLength(K);
    copy.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('smoke: a few more seeds solve two-spirals with a paper-like number of units; runs are deterministic', () => {
    for (const seed of [1, 2, 3]) {
      const result = cascadeCorrelation(spirals, { seed, buildModel: false });
      expect(result.model).toBeUndefined();
      expect(result.solved).toBe(true);
      expect(result.hiddenUnits).toBeLessThanOrEqual(25);
      expect(result.epochs).toBeGreaterThan(100);
      // The returned network classifies every point.
      const p = result.network.predict(spirals.x);
      for (let i = 0; i < spirals.count; i++) expect(p[i] > 0.5).toBe(spirals.y[i] === 1);
    }
    const a = cascadeCorrelation(spirals, { seed: 4, buildModel: false });
    const b = cascadeCorrelation(spirals, { seed: 4, buildModel: false });
    expect(b.hiddenUnits).toBe(a.hiddenUnits);
    expect(b.epochs).toBe(a.epochs);
    expect(b.network.output[0]).toEqual(a.network.output[0]);
  });

  it("the paper's score-threshold criterion: every output within 0.4 of its +-0.5 target", () => {
    const result = cascadeCorrelation(spirals, { seed: 5, scoreThreshold: 0.4, buildModel: false });
    expect(result.solved).toBe(true);
    const p = result.network.predict(spirals.x);
    for (let i = 0; i < spirals.count; i++) expect(Math.abs(p[i] - 0.5 - (spirals.y[i] === 1 ? 0.5 : -0.5))).toBeLessThan(0.4);
  });

  it('more than two classes: one output unit per class, argmax', () => {
    // Three interleaved rings: not linearly separable.
    const count = 90;
    const x = new Float32Array(count * 2);
    const y = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const c = i % 3;
      const angle = (i * 2.399) % (2 * Math.PI);
      const radius = 1 + c + 0.3 * Math.sin(i);
      x[2 * i] = radius * Math.cos(angle);
      x[2 * i + 1] = radius * Math.sin(angle);
      y[i] = c;
    }
    const result = cascadeCorrelation({ x, y, count }, { seed: 0 });
    const model = result.model as Model;
    expect(result.solved).toBe(true);
    expect(result.network.outputs).toBe(3);
    const out = modelOutputs(model, { x, y, count }, 2);
    expect(maxDiff(out, result.network.predict(x))).toBeLessThan(1e-5);
    for (let i = 0; i < count; i++) {
      const row = Array.from(out.slice(3 * i, 3 * i + 3));
      expect(row.indexOf(Math.max(...row))).toBe(y[i]);
    }
    expect(model.journal).toHaveLength(result.hiddenUnits);
    model.dispose();
  });

  it('with maxHiddenUnits 0 it trains the outputs only and reports failure', () => {
    const result = cascadeCorrelation(spirals, { seed: 0, maxHiddenUnits: 0 });
    expect(result.solved).toBe(false);
    expect(result.hiddenUnits).toBe(0);
    expect(result.candidateEpochs).toBe(0);
    expect(result.errors).toBeGreaterThan(50);
    expect(result.model?.journal).toHaveLength(0);
    expect(maxDiff(modelOutputs(result.model as Model, spirals, 2), result.network.predict(spirals.x))).toBeLessThan(1e-5);
    result.model?.dispose();
  });

  it('bad input gives typed errors and creates no tensors', () => {
    const tensors = tf.memory().numTensors;
    const code = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return isRsError(e) ? e.code : 'not an RsError';
      }
      return 'no error';
    };
    expect(code(() => cascadeCorrelation(spirals, { candidates: 0 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => cascadeCorrelation(spirals, { outputPatience: 1.5 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => cascadeCorrelation(spirals, { mu: -1 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => cascadeCorrelation(spirals, { scoreThreshold: 0 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => cascadeCorrelation({ x: new Float32Array(5), y: new Int32Array(2) }))).toBe('DATA_MISMATCH');
    expect(code(() => cascadeCorrelation({ x: new Float32Array(4), y: Int32Array.from([0, -1]) }))).toBe('DATA_MISMATCH');
    expect(code(() => cascadeCorrelation({ x: [0, Number.NaN, 1, 1], y: [0, 1] }))).toBe('DATA_MISMATCH');
    expect(code(() => cascadeCorrelation(null as unknown as CascorData))).toBe('INVALID_ARGUMENT');
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
