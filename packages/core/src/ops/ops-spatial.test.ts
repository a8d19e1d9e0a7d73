import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../tf';
import { builtinOps } from './builtins';
import { conv2d } from './conv2d';
import { maxPool2d } from './max-pool2d';
import { avgPool2d } from './avg-pool2d';
import { flatten } from './flatten';
import { reshape } from './reshape';
import { slice } from './slice';
import { ctx, info, expectCode, randomParams, paramShapes, recordUnits, close, runForward, iota } from './ops.test-util';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

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
