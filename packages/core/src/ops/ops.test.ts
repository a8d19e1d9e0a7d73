import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf';
import type { Tensor } from '../tf';
import { RsError, isRsError } from '../errors';
import type { RsErrorCode } from '../errors';
import type { ParamSpec, Shape, TensorInfo } from '../ir/types';
import type { Layout, ParamAxis, UnitBuilder } from '../units/builder';
import type { ForwardContext, InferContext, OpSchema } from './schema';
import { builtinOps } from './builtins';
import { conv2d } from './conv2d';
import { maxPool2d } from './max-pool2d';
import { avgPool2d } from './avg-pool2d';
import { flatten } from './flatten';
import { reshape } from './reshape';
import { gelu } from './gelu';
import { tanh } from './tanh';
import { sigmoid } from './sigmoid';
import { softmax } from './softmax';
import { concat } from './concat';
import { slice } from './slice';
import { layerNorm } from './layer-norm';
import { batchNorm } from './batch-norm';
import { embedding } from './embedding';
import { multiHeadAttention } from './multi-head-attention';
import { dropout } from './dropout';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// ---------------------------------------------------------------- fakes

const ctx: InferContext = {
  nodeId: 'n',
  fail(message: string): never {
    throw new RsError('SHAPE_MISMATCH', message);
  },
  failAttrs(message: string): never {
    throw new RsError('INVALID_ATTRS', message);
  },
};

function info(shape: Shape, dtype: TensorInfo['dtype'] = 'float32'): TensorInfo {
  return { shape, dtype };
}

function expectCode(run: () => unknown, code: RsErrorCode, pattern?: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  expect(isRsError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
  if (pattern) expect((caught as Error).message).toMatch(pattern);
}

function forwardContext(training: boolean, seed = 7): ForwardContext & { state: Record<string, Tensor> } {
  const state: Record<string, Tensor> = {};
  let s = seed;
  return {
    nodeId: 'n',
    training,
    rng: { next: () => ((s = (s * 16807) % 2147483647) / 2147483647), seed: () => (s = (s * 16807) % 2147483647) },
    addLoss: () => {},
    addMetric: () => {},
    setState: (param, value) => {
      state[param] = value;
    },
    state,
  };
}

/** Deterministic param tensors: ones/zeros as declared, seeded normals for everything else. */
function makeParams(specs: Record<string, ParamSpec>, seed = 1): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  let i = 0;
  for (const [name, spec] of Object.entries(specs)) {
    i++;
    if (spec.init.kind === 'ones') out[name] = tf.ones(spec.shape);
    else if (spec.init.kind === 'zeros') out[name] = tf.zeros(spec.shape);
    else out[name] = tf.randomNormal(spec.shape, 0, 0.5, 'float32', seed * 100 + i);
  }
  return out;
}

/** Every spec's init replaced by random values (to make biases and norms non-trivial). */
function randomParams(specs: Record<string, ParamSpec>, seed = 1): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  Object.entries(specs).forEach(([name, spec], i) => {
    out[name] = tf.randomNormal(spec.shape, 0, 0.5, 'float32', seed * 100 + i);
  });
  return out;
}

function paramShapes<A extends object>(op: OpSchema<A>, attrs: A, inputs: TensorInfo[]): Record<string, number[]> {
  const specs = op.params?.(attrs, inputs) ?? {};
  return Object.fromEntries(Object.entries(specs).map(([k, v]) => [k, v.shape]));
}

/** A UnitBuilder that records every call; layouts are tagged by a `group` number. */
function recordUnits<A extends object>(op: OpSchema<A>, attrs: A, inputs: TensorInfo[]) {
  const output = op.infer(attrs, inputs, ctx);
  const calls: { kind: string; args: unknown[] }[] = [];
  const layout = (length: number, group: number): Layout => ({ length, members: [{ group, size: length, offset: 0, outer: [], inner: 1 }] });
  let nextGroup = 100;
  const u: UnitBuilder<A> = {
    nodeId: 'n',
    attrs,
    inputs,
    output,
    input: (i) => (inputs[i].dtype === 'int32' ? null : layout(inputs[i].shape[inputs[i].shape.length - 1] as number, i)),
    source: (name: string, size: number, params: ParamAxis[]) => {
      calls.push({ kind: 'source', args: [name, size, params] });
      return layout(size, nextGroup++);
    },
    consume: (l, param, axis) => void calls.push({ kind: 'consume', args: [l?.members[0].group ?? null, param, axis] }),
    merge: (...ls) => {
      calls.push({ kind: 'merge', args: ls.map((l) => l?.members[0].group ?? null) });
      return ls[0];
    },
    concat: (ls, lengths) => {
      calls.push({ kind: 'concat', args: [ls.map((l) => l?.members[0].group ?? null), lengths] });
      return layout(lengths.reduce((a, b) => a + b, 0), nextGroup++);
    },
    expand: (l, count) => {
      calls.push({ kind: 'expand', args: [l?.members[0].group ?? null, count] });
      return l;
    },
    fixed: (length, reason) => {
      calls.push({ kind: 'fixed', args: [length, reason] });
      return layout(length, -1);
    },
    freeze: (l, reason) => void calls.push({ kind: 'freeze', args: [l?.members[0].group ?? null, reason] }),
    normalizes: (l, reason) => {
      calls.push({ kind: 'normalizes', args: [l?.members[0].group ?? null, reason] });
      return l;
    },
  };
  const units = op.units;
  const result = typeof units === 'function' ? units(u) : units;
  return { calls, result };
}

function close(actual: Tensor | number[], expected: number[], tolerance = 1e-5): void {
  const values = Array.isArray(actual) ? actual : Array.from(actual.dataSync());
  expect(values.length).toBe(expected.length);
  values.forEach((v, i) => expect(Math.abs(v - expected[i]), `index ${i}: ${v} vs ${expected[i]}`).toBeLessThanOrEqual(tolerance));
}

/** Runs forward inside tidy; checks that only the output survives. */
function runForward<A extends object>(
  op: OpSchema<A>,
  inputs: Tensor[],
  params: Record<string, Tensor>,
  attrs: A,
  fctx: ForwardContext = forwardContext(false),
): Tensor {
  const before = tf.memory().numTensors;
  const y = tf.tidy(() => op.forward(inputs, params, attrs, fctx));
  const kept = Object.keys((fctx as { state?: object }).state ?? {}).length;
  expect(tf.memory().numTensors).toBe(before + 1 + kept);
  return y;
}

function iota(shape: number[], scale = 0.1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Array.from({ length: n }, (_, i) => Math.sin(i + 1) * scale * 10), shape);
}

// ---------------------------------------------------------------- registry

describe('builtinOps', () => {
  it('lists every op once, with unique names', () => {
    const names = builtinOps.map((o) => o.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of ['conv2d', 'maxPool2d', 'avgPool2d', 'flatten', 'reshape', 'gelu', 'tanh', 'sigmoid', 'softmax', 'concat', 'slice', 'layerNorm', 'batchNorm', 'embedding', 'multiHeadAttention', 'dropout']) {
      expect(names).toContain(name);
    }
  });
});

// ---------------------------------------------------------------- conv2d

/** Direct NHWC convolution with TensorFlow's 'same' padding rule (pad_top = floor(total / 2)). */
function convLoop(x: number[][][], k: number[][][][], stride: number, padding: 'same' | 'valid', bias: number[]): number[] {
  const [h, w, c] = [x.length, x[0].length, x[0][0].length];
  const [kh, kw, , f] = [k.length, k[0].length, k[0][0].length, k[0][0][0].length];
  const ho = padding === 'same' ? Math.ceil(h / stride) : Math.floor((h - kh) / stride) + 1;
  const wo = padding === 'same' ? Math.ceil(w / stride) : Math.floor((w - kw) / stride) + 1;
  const top = padding === 'same' ? Math.floor(Math.max((ho - 1) * stride + kh - h, 0) / 2) : 0;
  const left = padding === 'same' ? Math.floor(Math.max((wo - 1) * stride + kw - w, 0) / 2) : 0;
  const out: number[] = [];
  for (let i = 0; i < ho; i++)
    for (let j = 0; j < wo; j++)
      for (let o = 0; o < f; o++) {
        let s = bias[o];
        for (let a = 0; a < kh; a++)
          for (let b = 0; b < kw; b++) {
            const r = i * stride + a - top;
            const q = j * stride + b - left;
            if (r < 0 || q < 0 || r >= h || q >= w) continue;
            for (let ch = 0; ch < c; ch++) s += x[r][q][ch] * k[a][b][ch][o];
          }
        out.push(s);
      }
  return out;
}

describe('conv2d', () => {
  it('infers output shapes for valid and same padding', () => {
    expect(conv2d.infer({ filters: 8, kernelSize: 3 }, [info([null, 28, 28, 1])], ctx)).toEqual(info([null, 26, 26, 8]));
    expect(conv2d.infer({ filters: 4, kernelSize: [3, 1], strides: 2, padding: 'same' }, [info([null, 7, 5, 3])], ctx)).toEqual(info([null, 4, 3, 4]));
    expect(conv2d.infer({ filters: 4, kernelSize: 3, strides: [2, 1] }, [info([2, 7, 5, 3])], ctx)).toEqual(info([2, 3, 3, 4]));
  });

  it('rejects bad attrs and shapes', () => {
    expectCode(() => conv2d.infer({ filters: 0, kernelSize: 3 }, [info([null, 8, 8, 1])], ctx), 'INVALID_ATTRS', /filters/);
    expectCode(() => conv2d.infer({ filters: 2, kernelSize: [3] as never }, [info([null, 8, 8, 1])], ctx), 'INVALID_ATTRS', /kernelSize/);
    expectCode(() => conv2d.infer({ filters: 2, kernelSize: 3, padding: 'full' as never }, [info([null, 8, 8, 1])], ctx), 'INVALID_ATTRS', /padding/);
    expectCode(() => conv2d.infer({ filters: 2, kernelSize: 3, strides: 1.5 }, [info([null, 8, 8, 1])], ctx), 'INVALID_ATTRS', /strides/);
    expectCode(() => conv2d.infer({ filters: 2, kernelSize: 3 }, [info([null, 8, 1])], ctx), 'SHAPE_MISMATCH', /\[\?, 8, 1\]/);
    expectCode(() => conv2d.infer({ filters: 2, kernelSize: 5 }, [info([null, 4, 4, 1])], ctx), 'SHAPE_MISMATCH', /\[\?, 4, 4, 1\]/);
    expectCode(() => conv2d.infer({ filters: 2, kernelSize: 1 }, [info([null, 4, 4, 1], 'int32')], ctx), 'SHAPE_MISMATCH', /int32/);
  });

  it('declares kernel and bias params', () => {
    const shapes = paramShapes(conv2d, { filters: 5, kernelSize: [3, 2] }, [info([null, 8, 8, 4])]);
    expect(shapes).toEqual({ kernel: [3, 2, 4, 5], bias: [5] });
    const specs = conv2d.params!({ filters: 5, kernelSize: [3, 2] }, [info([null, 8, 8, 4])]);
    expect(specs.kernel.init).toEqual({ kind: 'glorotUniform', fanIn: 24, fanOut: 30 });
    expect(paramShapes(conv2d, { filters: 5, kernelSize: 1, useBias: false }, [info([null, 8, 8, 4])])).toEqual({ kernel: [1, 1, 4, 5] });
  });

  for (const [stride, padding] of [[1, 'valid'], [2, 'same'], [2, 'valid']] as const) {
    it(`matches a direct loop (stride ${stride}, ${padding})`, () => {
      const attrs = { filters: 3, kernelSize: 3, strides: stride, padding };
      const xInfo = info([1, 5, 6, 2]);
      const params = randomParams(conv2d.params!(attrs, [xInfo]), stride);
      const x = iota([1, 5, 6, 2]);
      const y = runForward(conv2d, [x], params, attrs);
      expect(y.shape).toEqual(conv2d.infer(attrs, [xInfo], ctx).shape);
      const expected = convLoop(
        (x.arraySync() as number[][][][])[0],
        params.kernel.arraySync() as number[][][][],
        stride,
        padding,
        params.bias.arraySync() as number[],
      );
      close(y, expected, 1e-4);
    });
  }

  it('counts flops and syncs filters', () => {
    const attrs = { filters: 4, kernelSize: 3, padding: 'same' as const };
    const x = info([null, 8, 8, 2]);
    // 2 * kh * kw * C per output element, + 1 for the bias, over 8 * 8 * 4 outputs.
    expect(conv2d.flops!(attrs, [x], conv2d.infer(attrs, [x], ctx))).toBe(8 * 8 * 4 * (2 * 9 * 2 + 1));
    expect(conv2d.syncAttrs!(attrs, { kernel: [3, 3, 2, 3], bias: [3] }, [x]).filters).toBe(3);
  });

  it('consumes the input on kernel axis 2 and sources filters', () => {
    const { calls } = recordUnits(conv2d, { filters: 4, kernelSize: 3 }, [info([null, 8, 8, 2])]);
    expect(calls).toEqual([
      { kind: 'consume', args: [0, 'kernel', 2] },
      { kind: 'source', args: ['out', 4, [{ param: 'kernel', axis: 3 }, { param: 'bias', axis: 0 }]] },
    ]);
  });
});

// ---------------------------------------------------------------- pooling

describe('maxPool2d / avgPool2d', () => {
  it('infers shapes (strides default to poolSize)', () => {
    expect(maxPool2d.infer({ poolSize: 2 }, [info([null, 28, 28, 8])], ctx)).toEqual(info([null, 14, 14, 8]));
    expect(avgPool2d.infer({ poolSize: 3, strides: 1, padding: 'same' }, [info([null, 5, 5, 2])], ctx)).toEqual(info([null, 5, 5, 2]));
    expect(maxPool2d.infer({ poolSize: [2, 3] }, [info([null, 5, 7, 1])], ctx)).toEqual(info([null, 2, 2, 1]));
  });

  it('rejects bad attrs and shapes', () => {
    expectCode(() => maxPool2d.infer({ poolSize: -2 }, [info([null, 4, 4, 1])], ctx), 'INVALID_ATTRS', /poolSize/);
    expectCode(() => avgPool2d.infer({ poolSize: 2, padding: 'SAME' as never }, [info([null, 4, 4, 1])], ctx), 'INVALID_ATTRS', /padding/);
    expectCode(() => maxPool2d.infer({ poolSize: 2 }, [info([null, 4, 4])], ctx), 'SHAPE_MISMATCH', /rank 4/);
    expectCode(() => avgPool2d.infer({ poolSize: 5 }, [info([null, 4, 4, 1])], ctx), 'SHAPE_MISMATCH', /\[\?, 4, 4, 1\]/);
  });

  it('computes window max and mean per channel', () => {
    // Channel 0 = 0..15 row-major over a 4x4 image, channel 1 = its negation.
    const values = Array.from({ length: 16 }, (_, i) => [i, -i]).flat();
    const x = tf.tensor4d(values, [1, 4, 4, 2]);
    close(runForward(maxPool2d, [x], {}, { poolSize: 2 }), [5, 0, 7, -2, 13, -8, 15, -10]);
    close(runForward(avgPool2d, [x], {}, { poolSize: 2 }), [2.5, -2.5, 4.5, -4.5, 10.5, -10.5, 12.5, -12.5]);
  });

  it('passes the input layout through', () => {
    const { calls, result } = recordUnits(maxPool2d, { poolSize: 2 }, [info([null, 4, 4, 3])]);
    expect(calls).toEqual([]);
    expect(result).toMatchObject({ length: 3, members: [{ group: 0 }] });
  });
});

// ---------------------------------------------------------------- flatten / reshape / slice

describe('flatten', () => {
  it('infers and flattens row-major', () => {
    expect(flatten.infer({}, [info([null, 3, 4, 5])], ctx)).toEqual(info([null, 60]));
    expectCode(() => flatten.infer({}, [info([null])], ctx), 'SHAPE_MISMATCH', /\[\?\]/);
    expectCode(() => flatten.infer({}, [info([null, null, 4])], ctx), 'SHAPE_MISMATCH', /\[\?, \?, 4\]/);
    const x = iota([2, 2, 3, 2]);
    const y = runForward(flatten, [x], {}, {});
    expect(y.shape).toEqual([2, 12]);
    close(y, Array.from(x.dataSync()));
  });

  it('expands the channel layout over the spatial positions', () => {
    const { calls } = recordUnits(flatten, {}, [info([null, 3, 4, 5])]);
    expect(calls).toEqual([{ kind: 'expand', args: [0, 12] }]);
  });
});

describe('reshape', () => {
  it('infers shapes, resolving -1', () => {
    expect(reshape.infer({ shape: [-1, 8] }, [info([null, 4, 6, 8])], ctx)).toEqual(info([null, 24, 8]));
    expect(reshape.infer({ shape: [2, 8] }, [info([null, 16])], ctx)).toEqual(info([null, 2, 8]));
  });

  it('rejects bad attrs and shapes', () => {
    expectCode(() => reshape.infer({ shape: [-1, -1] }, [info([null, 16])], ctx), 'INVALID_ATTRS', /-1/);
    expectCode(() => reshape.infer({ shape: [0, 16] }, [info([null, 16])], ctx), 'INVALID_ATTRS');
    expectCode(() => reshape.infer({ shape: 'x' as never }, [info([null, 16])], ctx), 'INVALID_ATTRS');
    expectCode(() => reshape.infer({ shape: [3, 5] }, [info([null, 16])], ctx), 'SHAPE_MISMATCH', /\[\?, 16\].*\[\?, 3, 5\]/);
    expectCode(() => reshape.infer({ shape: [-1, 5] }, [info([null, 16])], ctx), 'SHAPE_MISMATCH', /divisible/);
  });

  it('reshapes, keeping the batch dimension', () => {
    const x = iota([3, 4, 2]);
    const y = runForward(reshape, [x], {}, { shape: [2, -1] });
    expect(y.shape).toEqual([3, 2, 4]);
    close(y, Array.from(x.dataSync()));
  });

  it('passes units when the last axis is kept, freezes them otherwise', () => {
    expect(recordUnits(reshape, { shape: [24, -1] }, [info([null, 4, 6, 8])]).calls).toEqual([]);
    // An explicit last size would go stale after a unit edit, so it freezes the units.
    expect(recordUnits(reshape, { shape: [-1, 8] }, [info([null, 4, 6, 8])]).calls.map((c) => c.kind)).toEqual(['freeze', 'fixed']);
    const { calls, result } = recordUnits(reshape, { shape: [4, 4] }, [info([null, 16])]);
    expect(calls.map((c) => c.kind)).toEqual(['freeze', 'fixed']);
    expect(calls[0].args[1]).toMatch(/reshape n changes the feature axis/);
    expect(result?.length).toBe(4);
  });
});

describe('slice', () => {
  it('infers shapes and rejects bad attrs and shapes', () => {
    expect(slice.infer({ begin: [1, 0], size: [2, -1] }, [info([null, 4, 6])], ctx)).toEqual(info([null, 2, 6]));
    expectCode(() => slice.infer({ begin: [0], size: [1, 1] }, [info([null, 4, 6])], ctx), 'INVALID_ATTRS', /\[\?, 4, 6\]/);
    expectCode(() => slice.infer({ begin: [-1, 0], size: [1, 1] }, [info([null, 4, 6])], ctx), 'INVALID_ATTRS', /begin/);
    expectCode(() => slice.infer({ begin: [0, 0], size: [0, 1] }, [info([null, 4, 6])], ctx), 'INVALID_ATTRS', /size/);
    expectCode(() => slice.infer({ begin: [3, 0], size: [2, 1] }, [info([null, 4, 6])], ctx), 'SHAPE_MISMATCH', /\[\?, 4, 6\]/);
    expectCode(() => slice.infer({ begin: [4, 0], size: [-1, 1] }, [info([null, 4, 6])], ctx), 'SHAPE_MISMATCH');
  });

  it('slices values', () => {
    const x = tf.tensor3d(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    const y = runForward(slice, [x], {}, { begin: [1, 1], size: [-1, 2] });
    expect(y.shape).toEqual([2, 2, 2]);
    close(y, [5, 6, 9, 10, 17, 18, 21, 22]);
  });

  it('freezes a partial feature axis and passes a whole one', () => {
    expect(recordUnits(slice, { begin: [1, 0], size: [2, -1] }, [info([null, 4, 6])]).calls).toEqual([]);
    const { calls } = recordUnits(slice, { begin: [0, 1], size: [-1, 3] }, [info([null, 4, 6])]);
    expect(calls.map((c) => [c.kind, c.args[0]])).toEqual([['freeze', 0], ['fixed', 3]]);
  });
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

// ---------------------------------------------------------------- attention

/** Plain-JS reference: per-head scaled dot-product attention with optional causal mask. */
function attentionLoop(x: number[][], p: Record<string, number[][] | number[]>, heads: number, headDim: number, causal: boolean): number[] {
  const mm = (a: number[][], w: number[][], b?: number[]) =>
    a.map((row) => w[0].map((_, j) => row.reduce((s, v, k) => s + v * w[k][j], b ? b[j] : 0)));
  const q = mm(x, p.wq as number[][], p.bq as number[]);
  const k = mm(x, p.wk as number[][], p.bk as number[]);
  const v = mm(x, p.wv as number[][], p.bv as number[]);
  const t = x.length;
  const merged = x.map(() => Array(heads * headDim).fill(0));
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < t; i++) {
      const logits: number[] = [];
      for (let j = 0; j < t; j++) {
        let s = 0;
        for (let e = 0; e < headDim; e++) s += q[i][h * headDim + e] * k[j][h * headDim + e];
        logits.push(causal && j > i ? -Infinity : s / Math.sqrt(headDim));
      }
      const m = Math.max(...logits);
      const ex = logits.map((l) => Math.exp(l - m));
      const z = ex.reduce((a, b) => a + b, 0);
      for (let j = 0; j < t; j++) for (let e = 0; e < headDim; e++) merged[i][h * headDim + e] += (ex[j] / z) * v[j][h * headDim + e];
    }
  }
  return mm(merged, p.wo as number[][], p.bo as number[]).flat();
}

describe('multiHeadAttention', () => {
  const attrs = { numHeads: 2, headDim: 3, causal: true };
  const xInfo = info([null, 4, 5]);

  it('infers shapes and rejects bad attrs and shapes', () => {
    expect(multiHeadAttention.infer(attrs, [xInfo], ctx)).toEqual(xInfo);
    expectCode(() => multiHeadAttention.infer({ numHeads: 0, headDim: 3 }, [xInfo], ctx), 'INVALID_ATTRS', /numHeads/);
    expectCode(() => multiHeadAttention.infer({ numHeads: 2, headDim: 3, causal: 'yes' as never }, [xInfo], ctx), 'INVALID_ATTRS', /causal/);
    expectCode(() => multiHeadAttention.infer(attrs, [info([null, 5])], ctx), 'SHAPE_MISMATCH', /\[\?, 5\]/);
  });

  it('declares projection params', () => {
    expect(paramShapes(multiHeadAttention, attrs, [xInfo])).toEqual({
      wq: [5, 6], wk: [5, 6], wv: [5, 6], wo: [6, 5], bq: [6], bk: [6], bv: [6], bo: [5],
    });
    expect(Object.keys(paramShapes(multiHeadAttention, { ...attrs, useBias: false }, [xInfo])).sort()).toEqual(['wk', 'wo', 'wq', 'wv']);
  });

  for (const causal of [false, true]) {
    it(`matches a direct loop (causal ${causal})`, () => {
      const a = { ...attrs, causal };
      const params = randomParams(multiHeadAttention.params!(a, [xInfo]), 3);
      const x = iota([2, 4, 5], 0.05);
      const y = runForward(multiHeadAttention, [x], params, a);
      expect(y.shape).toEqual([2, 4, 5]);
      const plain = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.arraySync() as number[][]]));
      const expected = (x.arraySync() as number[][][]).flatMap((sample) => attentionLoop(sample, plain, 2, 3, causal));
      close(y, expected, 1e-4);
    });
  }

  it('with a causal mask, earlier outputs ignore later tokens', () => {
    const params = randomParams(multiHeadAttention.params!(attrs, [xInfo]), 4);
    const x = iota([1, 4, 5]);
    const changed = tf.concat([tf.slice(x, [0, 0, 0], [1, 2, 5]), tf.mul(tf.slice(x, [0, 2, 0], [1, 2, 5]), -3)], 1);
    const run = (causal: boolean, input: Tensor) => Array.from(runForward(multiHeadAttention, [input], params, { ...attrs, causal }).dataSync());
    const [before, after] = [run(true, x), run(true, changed)];
    close(after.slice(0, 10), before.slice(0, 10), 1e-5); // tokens 0 and 1 unchanged
    expect(Math.abs(after[15] - before[15])).toBeGreaterThan(1e-4); // token 3 sees the change
    const [open, openChanged] = [run(false, x), run(false, changed)];
    expect(Math.abs(openChanged[0] - open[0])).toBeGreaterThan(1e-4); // without the mask token 0 sees it
  });

  it('removing a head after syncAttrs equals zeroing its output rows', () => {
    const a = { numHeads: 3, headDim: 2 };
    const info3 = info([null, 3, 4]);
    const params = randomParams(multiHeadAttention.params!(a, [info3]), 5);
    const x = iota([2, 3, 4]);
    // Head 1 occupies columns 2..3 of wq/wk/wv/bq/bk/bv and rows 2..3 of wo.
    const keep = tf.tensor1d([0, 1, 4, 5], 'int32');
    const pruned: Record<string, Tensor> = { ...params };
    for (const name of ['wq', 'wk', 'wv']) pruned[name] = tf.gather(params[name], keep, 1);
    for (const name of ['bq', 'bk', 'bv']) pruned[name] = tf.gather(params[name], keep);
    pruned.wo = tf.gather(params.wo, keep);
    const prunedShapes = Object.fromEntries(Object.entries(pruned).map(([k, v]) => [k, v.shape]));
    const synced = multiHeadAttention.syncAttrs!(a, prunedShapes, [info3]);
    expect(synced.numHeads).toBe(2);
    const rowMask = tf.tensor2d([1, 1, 0, 0, 1, 1], [6, 1]);
    const zeroed = { ...params, wo: tf.mul(params.wo, rowMask) };
    close(runForward(multiHeadAttention, [x], pruned, synced), Array.from(runForward(multiHeadAttention, [x], zeroed, a).dataSync()), 1e-5);
  });

  it('declares heads as a unit group and the output features as another', () => {
    const { calls } = recordUnits(multiHeadAttention, attrs, [xInfo]);
    expect(calls.slice(0, 3)).toEqual(['wq', 'wk', 'wv'].map((p) => ({ kind: 'consume', args: [0, p, 0] })));
    expect(calls[3]).toEqual({
      kind: 'source',
      args: [
        'heads',
        2,
        [
          { param: 'wq', axis: 1, inner: 3 },
          { param: 'wk', axis: 1, inner: 3 },
          { param: 'wv', axis: 1, inner: 3 },
          { param: 'bq', axis: 0, inner: 3 },
          { param: 'bk', axis: 0, inner: 3 },
          { param: 'bv', axis: 0, inner: 3 },
          { param: 'wo', axis: 0, inner: 3, role: 'in' },
        ],
      ],
    });
    expect(calls[4]).toEqual({ kind: 'source', args: ['out', 5, [{ param: 'wo', axis: 1 }, { param: 'bo', axis: 0 }]] });
  });

  it('counts flops', () => {
    // T=4, D=5, H*hd=6: projections 3*4*(2*5*6+6), scores and weighted sum 2 * 2*4*4*2*3, output 4*(2*6*5+5).
    expect(multiHeadAttention.flops!(attrs, [xInfo], xInfo)).toBe(3 * 4 * 66 + 2 * (2 * 16 * 2 * 3) + 4 * 65);
  });

  it('has gradients for every param', () => {
    const params = makeParams(multiHeadAttention.params!(attrs, [xInfo]));
    const names = Object.keys(params);
    const x = iota([1, 4, 5]);
    const grads = tf.grads((...ts: Tensor[]) =>
      tf.sum(multiHeadAttention.forward([x], Object.fromEntries(names.map((n, i) => [n, ts[i]])), attrs, forwardContext(false))),
    )(names.map((n) => params[n]));
    expect(grads.map((g) => g.shape)).toEqual(names.map((n) => params[n].shape));
  });
});
