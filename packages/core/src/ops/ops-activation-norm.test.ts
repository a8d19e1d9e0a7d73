import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf';
import type { Tensor } from '../tf';
import type { OpSchema } from './schema';
import { gelu } from './gelu';
import { tanh } from './tanh';
import { sigmoid } from './sigmoid';
import { softmax } from './softmax';
import { concat } from './concat';
import { layerNorm } from './layer-norm';
import { batchNorm } from './batch-norm';
import { embedding } from './embedding';
import { dropout } from './dropout';
import { ctx, info, expectCode, forwardContext, makeParams, paramShapes, recordUnits, close, runForward, iota } from './ops.test-util';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// ---------------------------------------------------------------- activations

describe('gelu / tanh / sigmoid / softmax / dropout', () => {
  it('are elementwise in shape and reject int32 input', () => {
    for (const op of [gelu, tanh, sigmoid] as OpSchema<Record<string, never>>[]) {
      expect(op.infer({}, [info([null, 3, 5])], ctx)).toEqual(info([null, 3, 5]));
      expectCode(() => op.infer({}, [info([null, 3], 'int32')], ctx), 'SHAPE_MISMATCH', /int32/);
      expect(op.units).toBe('elementwise');
    }
  });

  it('gelu follows the tanh approximation and has a gradient', () => {
    const xs = [-3, -1, 0, 0.5, 1, 2];
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), evaluated in float64.
    const expected = xs.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    close(runForward(gelu, [tf.tensor1d(xs)], {}, {}), expected);
    // gelu(1) = 0.8413 in the exact (erf) form; the approximation is within 1e-3.
    expect(Math.abs(expected[4] - 0.8413447)).toBeLessThan(1e-3);
    const g = tf.grad((x: Tensor) => tf.sum(gelu.forward([x], {}, {}, forwardContext(false))))(tf.tensor1d([0]));
    close(g, [0.5]);
  });

  it('tanh and sigmoid compute their functions', () => {
    close(runForward(tanh, [tf.tensor1d([-1, 0, 2])], {}, {}), [Math.tanh(-1), 0, Math.tanh(2)]);
    close(runForward(sigmoid, [tf.tensor1d([-1, 0, 2])], {}, {}), [1 / (1 + Math.E), 0.5, 1 / (1 + Math.exp(-2))]);
  });

  it('softmax declares that it normalises across the units only along the feature axis', () => {
    expect(recordUnits(softmax, {}, [info([null, 3])]).calls).toEqual([
      { kind: 'merge', args: [0] },
      { kind: 'normalizes', args: [0, 'the softmax normaliser sums over them'] },
    ]);
    expect(recordUnits(softmax, { axis: 1 }, [info([null, 4, 3])]).calls).toEqual([{ kind: 'merge', args: [0] }]);
  });

  it('softmax validates its axis and normalises along it', () => {
    expectCode(() => softmax.infer({ axis: 0 }, [info([null, 3])], ctx), 'INVALID_ATTRS', /batch/);
    expectCode(() => softmax.infer({ axis: 3 }, [info([null, 3])], ctx), 'INVALID_ATTRS', /\[\?, 3\]/);
    const x = iota([2, 3, 4]);
    const last = runForward(softmax, [x], {}, {});
    close(tf.sum(last, -1), Array(6).fill(1));
    const middle = runForward(softmax, [x], {}, { axis: 1 });
    close(tf.sum(middle, 1), Array(8).fill(1));
    // exp(x_i) / sum_j exp(x_j) by hand for row 0.
    const row = Array.from(x.dataSync()).slice(0, 4);
    const z = row.reduce((a, v) => a + Math.exp(v), 0);
    close(Array.from(last.dataSync()).slice(0, 4), row.map((v) => Math.exp(v) / z));
  });

  it('dropout: identity in inference, seeded inverted dropout in training', () => {
    expectCode(() => dropout.infer({ rate: 1 }, [info([null, 3])], ctx), 'INVALID_ATTRS', /rate/);
    expectCode(() => dropout.infer({} as never, [info([null, 3])], ctx), 'INVALID_ATTRS', /rate/);
    const x = tf.ones([4, 50]);
    close(runForward(dropout, [x], {}, { rate: 0.5 }), Array(200).fill(1));
    const a = runForward(dropout, [x], {}, { rate: 0.5 }, forwardContext(true, 3));
    const b = runForward(dropout, [x], {}, { rate: 0.5 }, forwardContext(true, 3));
    const values = Array.from(a.dataSync());
    expect(values.every((v) => v === 0 || Math.abs(v - 2) < 1e-6)).toBe(true);
    const zeros = values.filter((v) => v === 0).length;
    expect(zeros).toBeGreaterThan(50);
    expect(zeros).toBeLessThan(150);
    expect(Array.from(b.dataSync())).toEqual(values);
  });
});

// ---------------------------------------------------------------- concat

describe('concat', () => {
  it('infers shapes and rejects disagreeing inputs', () => {
    expect(concat.infer({}, [info([null, 2, 3]), info([null, 2, 5])], ctx)).toEqual(info([null, 2, 8]));
    expect(concat.infer({ axis: 1 }, [info([null, 2, 3]), info([null, 4, 3]), info([null, 1, 3])], ctx)).toEqual(info([null, 7, 3]));
    expectCode(() => concat.infer({}, [info([null, 2, 3]), info([null, 3, 3])], ctx), 'SHAPE_MISMATCH', /\[\?, 2, 3\], \[\?, 3, 3\]/);
    expectCode(() => concat.infer({}, [info([null, 3]), info([null, 2, 3])], ctx), 'SHAPE_MISMATCH', /ranks/);
    expectCode(() => concat.infer({}, [info([null, 3]), info([null, 3], 'int32')], ctx), 'SHAPE_MISMATCH', /dtypes/);
    expectCode(() => concat.infer({ axis: 0 }, [info([null, 3]), info([null, 3])], ctx), 'INVALID_ATTRS', /batch/);
    expectCode(() => concat.infer({ axis: 1.5 }, [info([null, 3]), info([null, 3])], ctx), 'INVALID_ATTRS');
  });

  it('concatenates values', () => {
    const y = runForward(concat, [tf.tensor2d([[1, 2]]), tf.tensor2d([[3]])], {}, {});
    close(y, [1, 2, 3]);
  });

  it('concatenates layouts on the feature axis and merges them elsewhere', () => {
    const a = recordUnits(concat, {}, [info([null, 3]), info([null, 5])]);
    expect(a.calls).toEqual([{ kind: 'concat', args: [[0, 1], [3, 5]] }]);
    const b = recordUnits(concat, { axis: 1 }, [info([null, 2, 3]), info([null, 4, 3])]);
    expect(b.calls).toEqual([{ kind: 'merge', args: [0, 1] }]);
  });
});

// ---------------------------------------------------------------- normalisation

describe('layerNorm', () => {
  it('infers, declares params and rejects bad input', () => {
    expect(layerNorm.infer({}, [info([null, 5, 8])], ctx)).toEqual(info([null, 5, 8]));
    expectCode(() => layerNorm.infer({ epsilon: 0 }, [info([null, 8])], ctx), 'INVALID_ATTRS', /epsilon/);
    expectCode(() => layerNorm.infer({}, [info([null])], ctx), 'SHAPE_MISMATCH', /\[\?\]/);
    const specs = layerNorm.params!({}, [info([null, 5, 8])]);
    expect(specs.gamma).toMatchObject({ shape: [8], init: { kind: 'ones' }, role: 'weight' });
    expect(specs.beta).toMatchObject({ shape: [8], init: { kind: 'zeros' }, role: 'bias' });
  });

  it('gives mean 0 and variance 1 per row with default params', () => {
    const x = iota([3, 2, 16]);
    const y = runForward(layerNorm, [x], makeParams(layerNorm.params!({}, [info([null, 2, 16])])), {});
    const { mean, variance } = tf.moments(y, -1);
    close(mean, Array(6).fill(0), 1e-5);
    // var / (var + 1e-5) ~ 1 for these rows (var ~ 1-50).
    close(variance, Array(6).fill(1), 1e-4);
  });

  it('consumes the input layout for gamma and beta', () => {
    const { calls, result } = recordUnits(layerNorm, {}, [info([null, 8])]);
    expect(calls).toEqual([
      { kind: 'consume', args: [0, 'gamma', 0] },
      { kind: 'consume', args: [0, 'beta', 0] },
      { kind: 'normalizes', args: [0, 'mean and variance are taken over them'] },
    ]);
    expect((result as { members: { group: number }[] } | null)?.members[0].group).toBe(0);
  });
});

describe('batchNorm', () => {
  it('infers, declares params and rejects bad attrs', () => {
    expect(batchNorm.infer({}, [info([null, 4, 4, 3])], ctx)).toEqual(info([null, 4, 4, 3]));
    expectCode(() => batchNorm.infer({ momentum: 1.5 }, [info([null, 3])], ctx), 'INVALID_ATTRS', /momentum/);
    expectCode(() => batchNorm.infer({}, [info([null, 3], 'int32')], ctx), 'SHAPE_MISMATCH');
    const specs = batchNorm.params!({}, [info([null, 4, 4, 3])]);
    expect(specs.movingMean).toMatchObject({ shape: [3], init: { kind: 'zeros' }, role: 'state', trainable: false });
    expect(specs.movingVariance).toMatchObject({ shape: [3], init: { kind: 'ones' }, role: 'state', trainable: false });
  });

  it('normalises with batch statistics in training and updates the moving ones', () => {
    const x = tf.add(tf.mul(iota([4, 3, 3, 2]), 3), 5);
    const params = makeParams(batchNorm.params!({}, [info([null, 3, 3, 2])]));
    const fctx = forwardContext(true);
    const y = runForward(batchNorm, [x], params, { momentum: 0.9, epsilon: 1e-3 }, fctx);
    const { mean, variance } = tf.moments(y, [0, 1, 2]);
    close(mean, [0, 0], 1e-4);
    const batch = tf.moments(x, [0, 1, 2]);
    const batchVar = Array.from(batch.variance.dataSync());
    close(variance, batchVar.map((v) => v / (v + 1e-3)), 1e-4);
    // new = 0.9 * old + 0.1 * batch, with old mean 0 and old variance 1.
    close(fctx.state.movingMean, Array.from(batch.mean.dataSync()).map((m) => 0.1 * m), 1e-4);
    close(fctx.state.movingVariance, batchVar.map((v) => 0.9 + 0.1 * v), 1e-4);
    Object.values(fctx.state).forEach((t) => t.dispose());
  });

  it('uses the moving statistics in inference', () => {
    const params = {
      gamma: tf.tensor1d([2, 1]),
      beta: tf.tensor1d([0, 1]),
      movingMean: tf.tensor1d([1, -1]),
      movingVariance: tf.tensor1d([4, 0.25]),
    };
    const x = tf.tensor2d([[3, 0]]);
    // ((3 - 1) / sqrt(4 + eps)) * 2 + 0, ((0 + 1) / sqrt(0.25 + eps)) * 1 + 1 with eps = 1e-3.
    close(runForward(batchNorm, [x], params, {}), [4 / Math.sqrt(4.001), 1 / Math.sqrt(0.251) + 1], 1e-5);
  });

  it('trains: gradients reach gamma and beta', () => {
    const params = makeParams(batchNorm.params!({}, [info([null, 2])]));
    const x = iota([5, 2]);
    const fctx = forwardContext(true);
    const grads = tf.grads((g: Tensor, b: Tensor) =>
      tf.sum(tf.square(batchNorm.forward([x], { ...params, gamma: g, beta: b }, {}, fctx))),
    )([params.gamma, params.beta]);
    expect(grads.map((g) => g.shape)).toEqual([[2], [2]]);
    Object.values(fctx.state).forEach((t) => t.dispose());
  });

  it("affine: false keeps gamma and beta out of training (PyTorch's affine=False)", () => {
    expect(batchNorm.params!({ affine: false }, [info([null, 3])]).gamma).toMatchObject({ init: { kind: 'ones' }, trainable: false });
    expect(batchNorm.params!({ affine: false }, [info([null, 3])]).beta).toMatchObject({ init: { kind: 'zeros' }, trainable: false });
    expect(batchNorm.params!({}, [info([null, 3])]).gamma.trainable).toBe(true);
    expectCode(() => batchNorm.infer({ affine: 'no' } as never, [info([null, 3])], ctx), 'INVALID_ATTRS', /affine/);
  });

  it('consumes the input layout for all four params', () => {
    const { calls } = recordUnits(batchNorm, {}, [info([null, 3])]);
    expect(calls.map((c) => c.args[1])).toEqual(['gamma', 'beta', 'movingMean', 'movingVariance']);
  });
});

// ---------------------------------------------------------------- embedding

describe('embedding', () => {
  it('infers shapes and rejects float ids and bad attrs', () => {
    expect(embedding.infer({ vocabSize: 10, dim: 4 }, [info([null, 7], 'int32')], ctx)).toEqual(info([null, 7, 4]));
    expectCode(() => embedding.infer({ vocabSize: 10, dim: 4 }, [info([null, 7])], ctx), 'SHAPE_MISMATCH', /int32.*\[\?, 7\]|\[\?, 7\]/);
    expectCode(() => embedding.infer({ vocabSize: 0, dim: 4 }, [info([null, 7], 'int32')], ctx), 'INVALID_ATTRS', /vocabSize/);
    expect(paramShapes(embedding, { vocabSize: 10, dim: 4 }, [info([null, 7], 'int32')])).toEqual({ table: [10, 4] });
  });

  it('gathers rows and has a gradient', () => {
    const table = tf.tensor2d([[0, 1], [10, 11], [20, 21]]);
    const ids = tf.tensor2d([[2, 0], [1, 1]], [2, 2], 'int32');
    const y = runForward(embedding, [ids], { table }, { vocabSize: 3, dim: 2 });
    expect(y.shape).toEqual([2, 2, 2]);
    close(y, [20, 21, 0, 1, 10, 11, 10, 11]);
    const g = tf.grad((t: Tensor) => tf.sum(embedding.forward([ids], { table: t }, { vocabSize: 3, dim: 2 }, forwardContext(false))))(table);
    close(g, [1, 1, 2, 2, 1, 1]); // row r's gradient = how often id r occurs
  });

  it('sources dim units on the table columns and syncs dim', () => {
    const { calls } = recordUnits(embedding, { vocabSize: 10, dim: 4 }, [info([null, 7], 'int32')]);
    expect(calls).toEqual([{ kind: 'source', args: ['out', 4, [{ param: 'table', axis: 1 }]] }]);
    expect(embedding.syncAttrs!({ vocabSize: 10, dim: 4 }, { table: [10, 3] }, []).dim).toBe(3);
  });
});
