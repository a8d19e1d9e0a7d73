import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf, Model, lenet300100, charTransformer, trainStep, adam, softmaxCrossEntropy, isRsError, ADAM_UPDATE_KERNEL, SOFTMAX_CE_KERNEL, SOFTMAX_CE_GRAD_KERNEL, GELU_KERNEL, GELU_GRAD_KERNEL, LAYER_NORM_KERNEL, LAYER_NORM_GRAD_KERNEL } from '@rs/core';
import { builtinOps } from '@rs/core/extend';
import { checkConformance } from '@rs/core/testing';
import { install as installCpu } from '@rs/backend-cpu';
import { install, setGemm, blasInUse, NATIVE_KERNELS, GOMP_SPINCOUNT } from './index';

const here = dirname(fileURLToPath(import.meta.url));
let blas = '';
let installedInfo: Awaited<ReturnType<typeof install>> | undefined;

beforeAll(async () => {
  await installCpu({ activate: false });
  const info = await install({ threads: 2, activate: false });
  installedInfo = info;
  blas = info.capabilities?.blas as string;
  await tf.setBackend('cpu');
});

/** The GEMM split install() chose ('own', 'blas' or 'auto'). */
function currentGemm(): string {
  return String(installedInfo?.capabilities?.gemm);
}
function restoreGemm(mode: string): void {
  setGemm(mode === 'own' ? false : mode === 'auto' ? 'auto' : blas);
}

/** Runs `f` on cpu and on native (same inputs, drawn in JS) and compares the outputs. */
function same(f: () => tf.Tensor, what: string): void {
  const run = (backend: string) => {
    const previous = tf.getBackend();
    tf.setBackend(backend);
    try {
      return tf.tidy(() => {
        const y = f();
        return { shape: y.shape, dtype: y.dtype, values: Array.from(y.dataSync()) };
      });
    } finally {
      tf.setBackend(previous);
    }
  };
  const start = seed;
  const ref = run('cpu');
  seed = start; // the same inputs on both backends
  const got = run('native');
  expect(got.shape, what).toEqual(ref.shape);
  expect(got.dtype, what).toBe(ref.dtype);
  // One assertion per call (not per element): the worst element, NaN where cpu has NaN.
  let worst = { excess: 0, i: -1 };
  got.values.forEach((v, i) => {
    const r = ref.values[i];
    const excess = Number.isNaN(r) || v === r ? (Number.isNaN(v) === Number.isNaN(r) ? 0 : Infinity) : Math.abs(v - r) - (1e-5 + 1e-4 * Math.abs(r));
    if (!(excess <= worst.excess)) worst = { excess, i };
  });
  expect(worst.i, `${what}: element ${worst.i} is ${got.values[worst.i]} on native, ${ref.values[worst.i]} on cpu`).toBe(-1);
}

let seed = 1;
// Uniform in [-2, 2), from a fixed generator (the same values whenever `seed` is reset).
const rnd = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 4 - 2), shape);

describe('native kernels against cpu, including the cases native code hands back to cpu', () => {
  for (const gemm of ['blas', 'own', 'auto'] as const) {
    it(`matmul and fused matmul (${gemm} GEMM)`, () => {
      if (gemm !== 'own' && blas === 'own') return; // no BLAS on this machine: 'own' covers it
      const before = currentGemm();
      setGemm(gemm === 'own' ? false : gemm === 'auto' ? 'auto' : blas);
      try {
        // Over the own GEMM's blocking: several K blocks (600 as 3 x 200), several row blocks and
        // panel groups (200 rows, 150 columns), ragged edges in each (not multiples of 12 or 32).
        for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
          // Scaled by 0.1: sums of 600 terms stay within the comparison's 1e-5 absolute part.
          same(() => tf.matMul(tf.mul(rnd(ta ? [600, 200] : [200, 600]), 0.1), tf.mul(rnd(tb ? [150, 600] : [600, 150]), 0.1), ta, tb), `matMul 200x600x150 ${ta} ${tb}`);
        }
        same(() => tf.matMul(tf.mul(rnd([128, 1024]), 0.1), tf.mul(rnd([1024, 40]), 0.1)), 'matMul 128x1024x40 (row blocks shrunk for the threads)');
        for (const tb of [false, true]) {
          same(() => tf.matMul(tf.mul(rnd([30, 700]), 0.1), tf.mul(rnd(tb ? [300, 700] : [700, 300]), 0.1), false, tb), `matMul 30x700x300 transposeB=${tb} (few rows: column panels grouped into work items)`);
        }
        // Random shapes and transposes (a fixed generator): every edge of the tiles and blocks,
        // on one thread and on two (from 2^22 multiply-adds), scaled so that sums stay small.
        let r = 12345;
        const draw = (lo: number, hi: number) => lo + ((r = (r * 48271) % 2147483647) % (hi - lo + 1));
        for (let i = 0; i < 24; i++) {
          const big = i % 3 === 0;
          const [m, k, n] = big ? [draw(40, 300), draw(200, 700), draw(33, 260)] : [draw(1, 70), draw(1, 300), draw(1, 90)];
          const [ta, tb] = [draw(0, 1) === 1, draw(0, 1) === 1];
          same(() => tf.matMul(tf.mul(rnd(ta ? [k, m] : [m, k]), 0.1), tf.mul(rnd(tb ? [n, k] : [k, n]), 0.1), ta, tb), `random matMul ${m}x${k}x${n} ${ta} ${tb}`);
        }
        for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
          const a = ta ? [37, 70] : [70, 37];
          const b = tb ? [19, 37] : [37, 19];
          same(() => tf.matMul(rnd(a), rnd(b), ta, tb), `matMul ${ta} ${tb}`);
          same(() => tf.matMul(rnd([3, ...a]), rnd([3, ...b]), ta, tb), `batched matMul ${ta} ${tb}`);
        }
        // One row (batch-1 inference: the gemv path), column counts on and off its 32-column blocks.
        // Scaled by 0.1: a sum of 784 products of values up to 2 that cancels to near 0 differs
        // from cpu's (another summation order) by more than the comparison's 1e-5 absolute part.
        for (const [k, n] of [[784, 300], [33, 7], [5, 64]]) {
          for (const tb of [false, true]) {
            same(() => tf.matMul(tf.mul(rnd([1, k]), 0.1), tf.mul(rnd(tb ? [n, k] : [k, n]), 0.1), false, tb), `one row ${k}x${n} transposeB=${tb}`);
            same(() => tf.fused.matMul({ a: tf.mul(rnd([1, k]), 0.1), b: tf.mul(rnd(tb ? [n, k] : [k, n]), 0.1), transposeB: tb, bias: rnd([n]), activation: 'relu' }), `fused one row ${k}x${n} transposeB=${tb}`);
          }
        }
        same(() => tf.matMul(rnd([1, 5, 7]), rnd([4, 7, 3])), 'batch broadcast (batch 1)');
        same(() => tf.matMul(rnd([2, 1, 5, 7]), rnd([1, 3, 7, 3])), 'batch broadcast per dimension (cpu)');
        same(() => tf.matMul(rnd([16, 64, 8]), rnd([16, 8, 64])), 'attention-like');
        for (const activation of ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu'] as const) {
          same(() => tf.fused.matMul({ a: rnd([9, 33]), b: rnd([33, 21]), bias: rnd([21]), activation, leakyreluAlpha: 0.3 }), `fused ${activation}`);
        }
        same(() => tf.fused.matMul({ a: rnd([9, 33]), b: rnd([21, 33]), transposeB: true, bias: rnd([1]), activation: 'relu' }), 'fused scalar bias');
        same(() => tf.fused.matMul({ a: rnd([9, 33]), b: rnd([33, 21]), bias: rnd([9, 21]) }), 'fused full bias (cpu)');
        same(() => tf.fused.matMul({ a: rnd([9, 33]), b: rnd([33, 21]), activation: 'prelu', preluActivationWeights: rnd([21]) }), 'fused prelu (cpu)');
      } finally {
        restoreGemm(before);
      }
    });
  }

  it('element-wise, step, softmax and sum', () => {
    const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
      ['add', tf.add], ['sub', tf.sub], ['mul', tf.mul], ['div', tf.div], ['max', tf.maximum], ['min', tf.minimum], ['sqdiff', tf.squaredDifference], ['pow', tf.pow],
    ];
    const pairs = [[[4, 3, 5], [4, 3, 5]], [[4, 3, 5], [5]], [[4, 3, 5], [1]], [[4, 3, 5], [4, 1, 1]], [[4, 3, 1], [4, 3, 5]], [[4, 1, 5], [4, 3, 5]], [[3, 1], [1, 5]]];
    for (const [name, op] of ops) for (const [sa, sb] of pairs) same(() => op(rnd(sa), rnd(sb)), `${name} ${sa} ${sb}`);
    same(() => tf.maximum(tf.tensor([1, NaN, 3]), tf.tensor([2, 2, NaN])), 'maximum NaN');
    same(() => tf.add(tf.tensor([1, 2, 3], [3], 'int32'), tf.tensor([4], [1], 'int32')), 'int32 add (cpu)');
    const unary = [tf.relu, tf.sqrt, tf.square, tf.exp, tf.log, tf.neg, tf.tanh, tf.sigmoid, tf.abs, tf.rsqrt, tf.relu6, tf.reciprocal, (x: tf.Tensor) => tf.step(x, 0.25)];
    unary.forEach((f, i) => same(() => f(tf.concat([rnd([40]), tf.tensor([0, NaN, 7])])), `unary ${i}`));
    same(() => tf.where(tf.greater(rnd([4, 6]), 0), rnd([4, 6]), rnd([4, 6])), 'select');
    same(() => tf.where(tf.greater(rnd([1, 6]), 0), rnd([4, 6]), rnd([4, 6])), 'select, broadcast condition (cpu)');
    same(() => tf.softmax(rnd([7, 11])), 'softmax');
    same(() => tf.softmax(rnd([2, 3, 11])), 'softmax rank 3');
    for (const axis of [0, 2, -1, [1, 2], [0, 1], 1, [0, 2], [0, 1, 2]]) {
      for (const keepDims of [false, true]) same(() => tf.sum(rnd([5, 4, 300]), axis, keepDims), `sum ${String(axis)} ${keepDims}`);
    }
    same(() => tf.sum(tf.tensor([1, 2, 3], [3], 'int32')), 'int32 sum (cpu)');
    for (const axis of [0, -1, [1, 2], 1]) same(() => tf.mean(rnd([5, 4, 30]), axis), `mean ${String(axis)}`);
  });

  it('saturating functions (tanh, sigmoid, softmax, GELU and its gradient) on [-100, 100], infinities and NaN', () => {
    const wide = () => tf.concat([tf.linspace(-100, 100, 2001), tf.tensor([Infinity, -Infinity, NaN, 1e-8, -1e-8, 88.8, -87.4])]);
    same(() => tf.tanh(wide()), 'tanh');
    same(() => tf.sigmoid(wide()), 'sigmoid');
    same(() => tf.softmax(tf.tensor([[0, -Infinity, 3, -100, 2.5, 1, 0, -1, 7], [50, 49, -50, 0, 1, 2, 3, 4, 5], [-Infinity, 1, 2, 3, -90, -95, 0, 0, 0]])), 'softmax');
    // The fused kernels on native against GELU's formula on cpu (as core composes it without them).
    const formula = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.square(x), x), 0.044715)), Math.sqrt(2 / Math.PI))), 1));
    const gelu = (x: tf.Tensor) => (tf.getBackend() === 'native' ? (tf.engine().runKernel(GELU_KERNEL, { x }) as tf.Tensor) : formula(x));
    const geluGrad = (x: tf.Tensor, dy: tf.Tensor) => (tf.getBackend() === 'native' ? (tf.engine().runKernel(GELU_GRAD_KERNEL, { dy, x }) as tf.Tensor) : tf.grad((v: tf.Tensor) => tf.sum(tf.mul(formula(v), dy)))(x));
    const finite = () => tf.concat([tf.linspace(-30, 30, 1201), tf.tensor([1e-8, -1e-8, 0])]);
    same(() => gelu(finite()), 'gelu');
    same(() => geluGrad(finite(), tf.onesLike(finite())), 'gelu gradient');
  });

  it("softmax cross-entropy: core's fused kernels on native give the composed loss and gradient of cpu, labels out of range included", async () => {
    const cases: [number[], number[], number[]][] = [
      [[6, 5], [6], [0, 4, 2, -1, 7, 3]],
      [[2, 3, 5], [2, 3], [1, 1, 0, 4, 2, 3]],
      [[4, 83], [4], [82, 0, 41, 5]],
    ];
    for (const [logitShape, labelShape, ids] of cases) {
      const labels = () => tf.tensor(ids, labelShape, 'int32');
      same(() => softmaxCrossEntropy(tf.mul(rnd(logitShape), 20), labels()), `loss ${logitShape}`);
      same(() => tf.grad((x: tf.Tensor) => softmaxCrossEntropy(x, labels()))(tf.mul(rnd(logitShape), 20)), `gradient ${logitShape}`);
    }
    tf.setBackend('native');
    try {
      const x = tf.randomUniform([8, 10]);
      const y = tf.tensor([1, 2, 3, 4, 5, 6, 7, 8], [8], 'int32');
      const v = tf.variable(x, true, 'ce-logits');
      const before = tf.memory().numTensors;
      const profile = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(() => softmaxCrossEntropy(v, y) as tf.Scalar, [v]);
        tf.dispose([value, ...Object.values(grads)]);
      });
      const names = profile.kernels.map((k) => k.name);
      expect(names).toContain(SOFTMAX_CE_KERNEL);
      expect(names).toContain(SOFTMAX_CE_GRAD_KERNEL);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, y, v]);
    } finally {
      tf.setBackend('cpu');
    }
  });

  it("layer norm: core's fused kernels on native give cpu's composed values and gradients (x, gamma, beta)", async () => {
    const schema = builtinOps.find((op) => op.name === 'layerNorm') as unknown as { forward(xs: tf.Tensor[], params: Record<string, tf.Tensor>, attrs: object): tf.Tensor };
    const ln = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => schema.forward([x], { gamma, beta }, { epsilon: 1e-3 });
    for (const shape of [[3, 5, 7], [64, 128], [2, 1]]) {
      const d = shape[shape.length - 1];
      const weights = () => rnd(shape);
      same(() => ln(rnd(shape), rnd([d]), rnd([d])), `layer norm ${shape}`);
      for (const which of [0, 1, 2]) {
        same(() => {
          const inputs = [rnd(shape), rnd([d]), rnd([d])];
          const w = weights();
          return tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(ln(x, g, b), w)))(inputs)[which];
        }, `layer norm gradient ${which} ${shape}`);
      }
    }
    tf.setBackend('native');
    try {
      const x = rnd([4, 6]);
      const [g, b] = [rnd([6]), rnd([6])];
      const profile = await tf.profile(() => tf.dispose(tf.grads((a: tf.Tensor) => tf.sum(ln(a, g, b)))([x])));
      const names = profile.kernels.map((k) => k.name);
      expect(names).toContain(LAYER_NORM_KERNEL);
      expect(names).toContain(LAYER_NORM_GRAD_KERNEL);
      tf.dispose([x, g, b]);
    } finally {
      tf.setBackend('cpu');
    }
  });

  it('convolution, its two gradients and pooling (max, average, their gradients): strides, same and valid padding, dilation, 1x1, activations', () => {
    // [x shape, filter shape, strides, pad, dilations]
    const convs: [number[], number[], number | [number, number], 'same' | 'valid' | number, number | [number, number]][] = [
      [[2, 9, 8, 3], [3, 3, 3, 4], 1, 'same', 1],
      [[2, 9, 8, 3], [3, 2, 3, 5], [2, 1], 'valid', 1],
      [[3, 10, 11, 2], [5, 5, 2, 3], 2, 'same', 1],
      [[2, 7, 7, 4], [1, 1, 4, 6], 1, 'valid', 1],
      [[2, 7, 7, 4], [1, 1, 4, 6], 2, 'same', 1],
      [[1, 9, 9, 2], [3, 3, 2, 2], 1, 'same', 2],
      [[2, 6, 5, 3], [3, 3, 3, 2], 1, 1, 1],
      // 1.2M im2col values per image, a small filter (750 x 2): images split over the threads,
      // each summing its share of the filter gradient (two chunks for the first thread).
      [[5, 40, 40, 30], [5, 5, 30, 2], 1, 'same', 1],
      // 2.25M per image, a larger filter (2500 x 2): one image per chunk of native code's 4M
      // buffer, the filter gradient summed chunk after chunk.
      [[3, 30, 30, 100], [5, 5, 100, 2], 1, 'same', 1],
      // One input channel: the direct convolution (output columns as vector lanes, filters in
      // groups of 8) and its filter gradient (row stride 1 only; the other cases use im2col).
      [[3, 28, 28, 1], [5, 5, 1, 6], 1, 'same', 1],
      [[2, 9, 13, 1], [3, 4, 1, 9], [2, 1], 'valid', 1],
      [[2, 7, 20, 1], [3, 3, 1, 1], 1, 2, 1],
      [[2, 8, 8, 1], [3, 3, 1, 4], 2, 'same', 1],
      [[1, 40, 37, 1], [5, 5, 1, 17], 1, 'same', 1],
    ];
    // Inputs scaled by 0.05 where a window holds hundreds of values: sums of that many products
    // then cancel to within float32's rounding of the element-wise tolerance.
    const small = (shape: number[]) => (shape[3] >= 30 || shape[2] >= 30 ? tf.mul(rnd(shape), 0.05) : rnd(shape));
    for (const [xs, fs, strides, pad, dilations] of convs) {
      const what = `conv x ${xs} filter ${fs} strides ${String(strides)} pad ${pad} dilations ${String(dilations)}`;
      const x = () => small(xs) as tf.Tensor4D;
      same(() => tf.conv2d(x(), small(fs) as tf.Tensor4D, strides, pad, 'NHWC', dilations), what);
      same(() => tf.fused.conv2d({ x: x(), filter: small(fs) as tf.Tensor4D, strides, pad, dilations, bias: rnd([fs[3]]), activation: 'relu' }), `fused ${what}`);
      if (dilations !== 1) continue; // tfjs takes gradients of undilated convolutions only
      const y = tf.tidy(() => tf.conv2d(tf.zeros<tf.Rank>(xs) as tf.Tensor4D, tf.zeros<tf.Rank>(fs) as tf.Tensor4D, strides, pad));
      same(() => tf.conv2dTranspose(small(y.shape) as tf.Tensor4D, small(fs) as tf.Tensor4D, xs as [number, number, number, number], strides, pad), `input gradient of ${what}`);
      same(() => tf.grad((f: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x(), f as tf.Tensor4D, strides, pad), small(y.shape))))(small(fs)), `filter gradient of ${what}`);
      y.dispose();
    }
    for (const activation of ['linear', 'relu6', 'sigmoid', 'elu', 'leakyrelu'] as const) {
      same(() => tf.fused.conv2d({ x: rnd([2, 6, 6, 3]) as tf.Tensor4D, filter: rnd([3, 3, 3, 4]) as tf.Tensor4D, strides: 1, pad: 'same', bias: rnd([4]), activation, leakyreluAlpha: 0.3 }), `fused conv ${activation}`);
    }
    same(() => tf.conv2d(rnd([1, 6, 5, 5]) as tf.Tensor4D, rnd([3, 3, 6, 2]) as tf.Tensor4D, 1, 'valid', 'NCHW' as 'NHWC'), 'NCHW (cpu)');
    same(() => tf.fused.conv2d({ x: rnd([2, 6, 6, 3]) as tf.Tensor4D, filter: rnd([3, 3, 3, 4]) as tf.Tensor4D, strides: 1, pad: 'same', activation: 'prelu', preluActivationWeights: rnd([4]) }), 'fused prelu (cpu)');
    // [x shape, window, strides, pad]
    const pools: [number[], number | [number, number], number | [number, number], 'same' | 'valid'][] = [
      [[2, 8, 8, 3], 2, 2, 'valid'],
      [[2, 9, 7, 3], 3, 2, 'same'],
      [[1, 9, 9, 5], [3, 2], 1, 'valid'],
      [[2, 5, 5, 2], 3, 3, 'same'],
    ];
    for (const [xs, window, strides, pad] of pools) {
      const what = `pool x ${xs} window ${String(window)} strides ${String(strides)} ${pad}`;
      same(() => tf.maxPool(rnd(xs) as tf.Tensor4D, window, strides, pad), `max ${what}`);
      same(() => tf.avgPool(rnd(xs) as tf.Tensor4D, window, strides, pad), `avg ${what}`);
      same(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(x as tf.Tensor4D, window, strides, pad), 3)))(rnd(xs)), `max gradient ${what}`);
      same(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(x as tf.Tensor4D, window, strides, pad), rnd(tf.avgPool(tf.zeros<tf.Rank>(xs) as tf.Tensor4D, window, strides, pad).shape))))(rnd(xs)), `avg gradient ${what}`);
    }
    // Ties: the gradient goes to the first maximum of each window, as on cpu.
    same(() => tf.grad((x: tf.Tensor) => tf.sum(tf.maxPool(x as tf.Tensor4D, 2, 1, 'valid')))(tf.tensor4d([1, 1, 1, 1, 0, 1, 1, 1, 1], [1, 3, 3, 1])), 'max gradient with ties');
  });

  it('transpose, gather, pad and segment sum', () => {
    for (const perm of [[1, 0, 2], [0, 2, 1], [2, 1, 0], [0, 1, 2]]) same(() => tf.transpose(rnd([3, 4, 5]), perm), `transpose ${perm}`);
    same(() => tf.transpose(rnd([2, 3, 4, 5]), [0, 2, 1, 3]), 'transpose heads');
    same(() => tf.transpose(tf.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'int32')), 'int32 transpose');
    same(() => tf.transpose(tf.tensor([1, 0, 1, 1, 0, 0], [2, 3], 'bool')), 'bool transpose (cpu)');
    const ids = tf.tensor([[3, 0, 3], [1, 2, 0]], [2, 3], 'int32');
    same(() => tf.gather(rnd([5, 7]), ids), 'gather axis 0');
    same(() => tf.gather(rnd([4, 5, 3]), tf.tensor([4, 0], [2], 'int32'), 1), 'gather axis 1');
    same(() => tf.gather(tf.tensor([1, 2, 3], [3], 'int32'), tf.tensor([2, 2], [2], 'int32')), 'int32 gather');
    for (const [shape, paddings] of [[[64, 128], [[0, 192], [0, 0]]], [[3, 4, 5], [[1, 0], [0, 2], [3, 1]]], [[7], [[2, 3]]], [[2, 3], [[0, 0], [0, 0]]]] as [number[], [number, number][]][]) {
      same(() => tf.pad(rnd(shape), paddings, 0.5), `pad ${shape} by ${JSON.stringify(paddings)}`);
    }
    same(() => tf.pad(tf.tensor([1, 2, 3, 4], [2, 2], 'int32'), [[1, 1], [0, 1]]), 'int32 pad');
    same(() => tf.pad(tf.zeros([2, 0, 3]), [[1, 0], [0, 1], [0, 0]], 2), 'pad of an empty tensor');
    same(() => tf.unsortedSegmentSum(rnd([6, 4]), tf.tensor([0, 2, 0, 4, -1, 2], [6], 'int32'), 5), 'segment sum (negative id dropped)');
    tf.setBackend('native');
    try {
      expect(() => tf.tidy(() => tf.gather(rnd([5, 7]), tf.tensor([5], [1], 'int32')))).toThrow(/index value 5/);
    } finally {
      tf.setBackend('cpu');
    }
  });
});

describe("core's fused attention on native", () => {
  it('gives the composed attention of cpu, values and gradients (every parameter and the input), causal or not, at sizes off the SIMD widths', () => {
    for (const [numHeads, headDim, t, causal] of [[3, 5, 37, true], [3, 5, 37, false], [1, 8, 1, true], [2, 16, 64, true]] as const) {
      const c = { name: `attention ${numHeads}x${headDim} T ${t} causal ${causal}`, op: 'multiHeadAttention', attrs: { numHeads, headDim, causal }, inputs: [{ shape: [2, t, 12], dtype: 'float32' as const }], training: true, seed: t + numHeads };
      // At these lengths two composed float32 implementations already differ by up to 3x the
      // suite's default tolerance (wasm against cpu, measured: the key bias's gradient, which is
      // analytically 0, at 2.96x; wq's at 1.7x); the fused kernel lands in the same band, so the
      // check is 10x looser here. The suite's own small cases run at the default tolerance.
      const result = checkConformance(c, { backend: 'native', reference: 'cpu', rtol: 1e-3, atol: 1e-4 });
      expect(result.ok, `${c.name}: ${result.report}`).toBe(true);
    }
  });

  it('a transformer training step runs attention as the two fused kernels (no softmax, no head transposes) and leaks nothing', async () => {
    tf.setBackend('native');
    try {
      const model = Model.create(charTransformer({ vocabSize: 11, context: 9, dim: 12, heads: 3, layers: 1 }), { seed: 0 });
      const x = tf.tensor2d(Array.from({ length: 18 }, (_, i) => i % 11), [2, 9], 'int32');
      const y = tf.tensor2d(Array.from({ length: 18 }, (_, i) => (i * 7) % 11), [2, 9], 'int32');
      const optimizer = adam({ learningRate: 1e-3 });
      trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
      const before = tf.memory().numTensors;
      const profile = await tf.profile(() => {
        trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
      });
      expect(tf.memory().numTensors).toBe(before);
      const names = profile.kernels.map((k) => k.name);
      expect(names.filter((n) => n === 'RsAttention')).toHaveLength(1);
      expect(names.filter((n) => n === 'RsAttentionGrad')).toHaveLength(1);
      expect(names).not.toContain('Softmax');
      expect(profile.kernels.filter((k) => k.name === 'Transpose' && k.inputShapes[0]?.length === 4)).toEqual([]);
      model.dispose();
      tf.dispose([x, y]);
    } finally {
      tf.setBackend('cpu');
    }
  });
});

describe('native backend', () => {
  it('reports the kernels that run as native code and the GEMM they use', () => {
    expect(NATIVE_KERNELS).toEqual(expect.arrayContaining(['BatchMatMul', '_FusedMatMul', 'Add', 'Multiply', 'Softmax', 'Sum']));
    expect(blasInUse()).toBe(blas);
  });

  it('leaks no tensor over 200 training steps and learns', () => {
    const previous = tf.getBackend();
    tf.setBackend('native');
    try {
      const model = Model.create(lenet300100(), { seed: 0 });
      const x = tf.randomUniform([16, 784], 0, 1, 'float32', 3);
      const y = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), 'int32');
      const optimizer = adam({ learningRate: 1e-3 });
      // The first step creates Adam's slots (m and v per parameter); count from after it.
      const losses = [trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss];
      const before = tf.memory().numTensors;
      for (let i = 1; i < 200; i++) losses.push(trainStep(model, [x], y, softmaxCrossEntropy, optimizer).loss);
      expect(tf.memory().numTensors).toBe(before);
      expect(losses[199]).toBeLessThan(losses[0] / 10); // memorises 16 examples
      model.dispose();
      tf.dispose([x, y]);
    } finally {
      tf.setBackend(previous);
    }
  });

  it("runs core's Adam as one fused kernel, with the values of the generic update", () => {
    const run = (backend: string, weightDecay: number) => {
      tf.setBackend(backend);
      const model = Model.create(lenet300100({ inputs: 12, hidden: [7, 5] }), { seed: 0 });
      const optimizer = adam({ learningRate: 1e-2, weightDecay });
      const grads = new Map(model.paramKeys().map((k, i) => [k, tf.tidy(() => { const v = model.param(k).value; return tf.reshape(tf.sin(tf.mul(tf.range(0, v.size), i + 1)), v.shape); })]));
      for (let step = 0; step < 3; step++) optimizer.step(model, grads);
      const values = model.paramKeys().map((k) => Array.from(model.param(k).value.dataSync()));
      tf.dispose([...grads.values()]);
      model.dispose();
      return values;
    };
    const config = (tf.getKernel as (n: string, b: string) => { kernelFunc: (a: unknown) => unknown })(ADAM_UPDATE_KERNEL, 'native');
    const original = config.kernelFunc;
    let calls = 0;
    config.kernelFunc = (a) => ((calls += 1), original(a));
    try {
      for (const weightDecay of [0, 0.1]) {
        const ref = run('cpu', weightDecay);
        const got = run('native', weightDecay);
        let worst = 0;
        ref.forEach((values, p) => values.forEach((r, i) => (worst = Math.max(worst, Math.abs(got[p][i] - r) / (1e-6 + 1e-5 * Math.abs(r))))));
        expect(worst).toBeLessThanOrEqual(1);
      }
    } finally {
      config.kernelFunc = original;
      tf.setBackend('cpu');
    }
    expect(calls).toBe(2 * 3 * 6); // two runs, three steps, six parameters
  });

  it('setGemm refuses a BLAS that does not load and keeps the GEMM it had', () => {
    let error: unknown;
    try {
      setGemm('/nonexistent/libblas.so');
    } catch (e) {
      error = e;
    }
    expect(isRsError(error, 'NO_BACKEND')).toBe(true);
    expect(blasInUse()).toBe(blas);
  });

  // The children run the built package (the test command builds every package first).
  const child = (env: Record<string, string | undefined> = {}) => {
    const run = spawnSync(process.execPath, [join(here, '..', 'test', 'exit-child.mjs')], { encoding: 'utf8', timeout: 60_000, cwd: join(here, '..'), env: { ...process.env, ...env } });
    expect(run.error, 'the child did not exit within 60 s').toBeUndefined();
    expect(run.status, run.stderr).toBe(0);
    return JSON.parse(run.stdout.trim().split('\n').pop() as string);
  };

  it('a Node process using native threads exits by itself', () => {
    expect(child()).toMatchObject({ backend: 'native', threads: 2 });
  });

  it("sets OpenMP's short spin before the library loads unless the user chose a wait policy", () => {
    const clean = { OMP_WAIT_POLICY: undefined, GOMP_SPINCOUNT: undefined, KMP_BLOCKTIME: undefined };
    expect(child(clean).wait).toEqual({ GOMP_SPINCOUNT: String(GOMP_SPINCOUNT), KMP_BLOCKTIME: '0', OMP_WAIT_POLICY: null });
    expect(child({ ...clean, OMP_WAIT_POLICY: 'passive' }).wait).toEqual({ GOMP_SPINCOUNT: null, KMP_BLOCKTIME: null, OMP_WAIT_POLICY: 'passive' });
    expect(child({ ...clean, GOMP_SPINCOUNT: '1000' }).wait).toEqual({ GOMP_SPINCOUNT: '1000', KMP_BLOCKTIME: null, OMP_WAIT_POLICY: null });
  });

  it('GEMM: the own AVX-512 GEMM takes the large products only where OpenBLAS runs kernels without AVX-512', () => {
    const haswell = child({ OPENBLAS_CORETYPE: 'Haswell' });
    if (!String(haswell.blas).includes('openblas')) {
      // No OpenBLAS here: install() uses what it found (or the own GEMM) for every product.
      expect(haswell.gemm).toBe(haswell.blas === 'own' ? 'own' : 'blas');
      return;
    }
    expect(haswell).toMatchObject({ blasCore: 'Haswell', coretypeAfter: 'Haswell' });
    expect(haswell.gemm).toBe(haswell.ownGemmBits === 512 ? 'auto' : 'blas');
    const named = child({ OPENBLAS_CORETYPE: 'Haswell', RS_BLAS: String(haswell.blas) });
    expect(named.gemm, 'a BLAS named by the user runs every product').toBe('blas');
    const skylake = child({ OPENBLAS_CORETYPE: 'SkylakeX' });
    if (skylake.blasCore === 'SkylakeX') expect(skylake.gemm, 'OpenBLAS with AVX-512 kernels runs every product').toBe('blas');
  });

  it("setGemm('auto') returns to the BLAS last loaded, and is refused where none ever loaded", () => {
    const before = currentGemm();
    try {
      setGemm(false);
      if (blas !== 'own') {
        expect(setGemm('auto')).toBe(blas);
        expect(currentGemm()).toBe('auto');
      }
    } finally {
      restoreGemm(before);
    }
    const report = child({ RS_BLAS: 'none', RS_CHILD_AUTO: '1' });
    expect(report).toMatchObject({ blas: 'own', gemm: 'own', autoError: 'NO_BACKEND' });
  });

  it('without the compiled library, install() throws a typed error naming it and cpu still works', () => {
    const report = child({ RS_NATIVE_LIBRARY: '/nonexistent/librsnative.so' });
    expect(report).toMatchObject({ error: { name: 'RsError', code: 'NO_BACKEND', missing: 'library' }, backend: 'cpu', value: 64 });
  });

  it('without a compiler, the build step does not fail and records why', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rs-native-'));
    const run = spawnSync(process.execPath, [join(here, '..', 'scripts', 'build-native.mjs'), '--quiet'], {
      encoding: 'utf8',
      env: { ...process.env, CC: '/nonexistent/cc', RS_NATIVE_BUILD_DIR: dir },
    });
    expect(run.status, run.stderr).toBe(0);
    const status = JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8'));
    expect(status.ok).toBe(false);
    expect(status.message).toContain('no C compiler found');
  });
});
