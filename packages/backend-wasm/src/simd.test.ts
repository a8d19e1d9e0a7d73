import { describe, it, expect, beforeAll } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tf } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install, simdKernelCalls } from './index';
import { SIMD_SOURCE_SHA256 } from './kernels/simd-binary';
import { setIm2colBudget } from './kernels/conv-simd';

beforeAll(async () => {
  await installCpu({ activate: false });
  await install({ threads: 2 });
});

/** `body` on wasm and on cpu, as plain arrays. */
async function both(body: () => tf.Tensor): Promise<[number[], number[]]> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    return tf.tidy(() => Array.from(body().dataSync()));
  };
  const wasm = await run('wasm');
  const cpu = await run('cpu');
  await tf.setBackend('wasm');
  return [wasm, cpu];
}

const values = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 2);

describe('@rs/backend-wasm SIMD kernels', () => {
  it('the committed module was built from the committed C source', () => {
    const source = readFileSync(fileURLToPath(new URL('../native/simd-kernels.c', import.meta.url)));
    expect(createHash('sha256').update(source).digest('hex')).toBe(SIMD_SOURCE_SHA256);
  });

  it('gradients of convolutions and pools equal cpu (strides, same/valid/numeric padding, partial windows, ties) and run in the module', async () => {
    const before = simdKernelCalls();
    const size = (s: number[]) => s.reduce((p, q) => p * q, 1);
    const t = (shape: number[], seed: number) => tf.tensor<tf.Rank>(values(size(shape), seed), shape) as tf.Tensor4D;
    const close = (got: number[], want: number[], what: string) => {
      expect(got.length, what).toBe(want.length);
      const bad = got.map((g, i) => [i, g, want[i]]).filter(([, g, w]) => !(Math.abs(g - w) <= 1e-4 * (1 + Math.abs(w))));
      expect(bad.slice(0, 3), what).toEqual([]);
    };
    // [x, filter, strides, pad]
    const convs: [number[], number[], number | [number, number], 'same' | 'valid' | number][] = [
      [[2, 9, 8, 3], [3, 3, 3, 4], 1, 'same'],
      [[2, 9, 8, 3], [3, 2, 3, 5], [2, 1], 'valid'],
      [[3, 10, 11, 2], [5, 5, 2, 6], 2, 'same'],
      [[2, 7, 7, 4], [1, 1, 4, 9], 1, 'valid'],
      [[2, 6, 5, 3], [3, 3, 3, 2], 1, 1],
      // Output channels on each side of the filter gradient's register path (at most 16) and off multiples of 4.
      [[2, 6, 6, 3], [3, 3, 3, 13], 2, 'valid'],
      [[2, 6, 6, 3], [3, 3, 3, 20], 1, 'same'],
      // Run with a 1,000-float im2col budget (below): one image per chunk, 289 output positions
      // per image, so the filter gradient sums two chunks of two row blocks (256 + 33) each.
      [[2, 17, 17, 3], [3, 3, 3, 20], 1, 'same'],
    ];
    for (const [xs, fs, strides, pad] of convs) {
      const what = `x ${xs} filter ${fs} strides ${String(strides)} pad ${pad}`;
      const budget = setIm2colBudget(xs[1] === 17 ? 1000 : 1 << 22);
      const yShape = tf.tidy(() => tf.conv2d(tf.zeros<tf.Rank>(xs) as tf.Tensor4D, tf.zeros<tf.Rank>(fs) as tf.Tensor4D, strides, pad).shape);
      const weights = () => t(yShape, 5);
      close(...(await both(() => tf.grad((f: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(t(xs, 3), f as tf.Tensor4D, strides, pad), weights())))(t(fs, 4)))), `filter gradient, ${what}`);
      close(...(await both(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x as tf.Tensor4D, t(fs, 4), strides, pad), weights())))(t(xs, 3)))), `input gradient, ${what}`);
      setIm2colBudget(budget);
    }
    // [x, window, strides, pad]
    const pools: [number[], number | [number, number], number | [number, number], 'same' | 'valid'][] = [
      [[2, 8, 8, 3], 2, 2, 'valid'],
      [[2, 9, 7, 3], 3, 2, 'same'],
      [[1, 9, 9, 5], [3, 2], 1, 'valid'],
      [[2, 5, 5, 2], 3, 3, 'same'],
    ];
    for (const [xs, window, strides, pad] of pools) {
      const what = `x ${xs} window ${String(window)} strides ${String(strides)} ${pad}`;
      const yShape = tf.tidy(() => tf.maxPool(tf.zeros<tf.Rank>(xs) as tf.Tensor4D, window, strides, pad).shape);
      close(...(await both(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(x as tf.Tensor4D, window, strides, pad), t(yShape, 6))))(t(xs, 7)))), `max pool gradient, ${what}`);
      close(...(await both(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(x as tf.Tensor4D, window, strides, pad), t(yShape, 6))))(t(xs, 7)))), `average pool gradient, ${what}`);
    }
    // Ties: the first maximum of each window takes the gradient, as on cpu.
    close(...(await both(() => tf.grad((x: tf.Tensor) => tf.sum(tf.maxPool(x as tf.Tensor4D, 2, 1, 'valid')))(tf.tensor4d([1, 1, 1, 1, 0, 1, 1, 1, 1], [1, 3, 3, 1])))), 'max pool gradient with ties');
    const after = simdKernelCalls();
    expect(after.Conv2DBackpropFilter - before.Conv2DBackpropFilter).toBe(convs.length);
    expect(after.Conv2DBackpropInput - before.Conv2DBackpropInput).toBe(convs.length);
    expect(after.MaxPoolGrad - before.MaxPoolGrad).toBe(pools.length + 1);
    expect(after.AvgPoolGrad - before.AvgPoolGrad).toBe(pools.length);
  });

  it('batched matmul equals cpu: odd sizes, every transpose, broadcast batches (rtol 1e-5)', async () => {
    const before = simdKernelCalls().BatchMatMul;
    let cases = 0;
    // [batch dims of a, batch dims of b, m, n, k]: sizes off the 4x8 register blocks included.
    const shapes: Array<[number[], number[], number, number, number]> = [
      [[3], [3], 7, 13, 5],
      [[2, 3], [2, 3], 9, 8, 3],
      [[4], [4], 4, 16, 33],
      [[2], [2], 1, 1, 1],
      [[], [5], 6, 10, 4],
      [[5], [1], 3, 12, 7],
      [[2, 2], [2, 2], 64, 32, 64],
    ];
    for (const [batchA, batchB, m, n, k] of shapes) {
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        const aShape = [...batchA, ...(ta ? [k, m] : [m, k])];
        const bShape = [...batchB, ...(tb ? [n, k] : [k, n])];
        const size = (s: number[]) => s.reduce((p, q) => p * q, 1);
        const [got, want] = await both(() => tf.matMul(tf.tensor(values(size(aShape), 1), aShape), tf.tensor(values(size(bShape), 2), bShape), ta, tb));
        expect(got.length).toBe(want.length);
        const bad = got.filter((g, i) => Math.abs(g - want[i]) > 1e-5 * (1 + Math.abs(want[i])));
        expect(bad, `a ${aShape} b ${bShape} transposeA=${ta} transposeB=${tb}`).toEqual([]);
        cases++;
      }
    }
    expect(simdKernelCalls().BatchMatMul - before).toBe(cases);
  });

  it('sums over leading axes equal cpu (keepDims, negative axes, widths off the vector blocks); other sums unchanged', async () => {
    const before = simdKernelCalls().Sum;
    const cases: Array<[number[], number | number[], boolean]> = [
      [[5, 7], 0, false],
      [[3, 4, 5], [0, 1], true],
      [[3, 4, 5], [1, 0], false],
      [[6, 37], -2, false],
      [[2, 3, 16], [0], true],
      [[1024, 3], 0, false],
    ];
    for (const [shape, axis, keepDims] of cases) {
      const [got, want] = await both(() => tf.sum(tf.tensor(values(shape.reduce((p, q) => p * q, 1), 3), shape), axis, keepDims));
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `${shape} axis ${axis}`).toBeLessThan(1e-4 * (1 + Math.abs(want[i])));
      const shapes = await both(() => tf.tensor1d(tf.sum(tf.tensor(values(shape.reduce((p, q) => p * q, 1), 3), shape), axis, keepDims).shape));
      expect(shapes[0], `${shape} axis ${axis} keepDims ${keepDims}`).toEqual(shapes[1]);
    }
    // Two wasm calls per case (values, then shape), each on the SIMD kernel.
    expect(simdKernelCalls().Sum - before).toBe(2 * cases.length);
    const [inner, innerCpu] = await both(() => tf.sum(tf.tensor(values(60, 4), [3, 4, 5]), [1, 2]));
    for (let i = 0; i < innerCpu.length; i++) expect(Math.abs(inner[i] - innerCpu[i])).toBeLessThan(1e-4);
  });

  it('adds broadcast over leading axes equal cpu (either operand first, widths off the vector blocks); other adds unchanged', async () => {
    const before = simdKernelCalls().Add;
    const cases: Array<[number[], number[]]> = [[[5, 7], [7]], [[7], [5, 7]], [[2, 3, 9], [3, 9]], [[1024, 128], [128]]];
    for (const [sa, sb] of cases) {
      const size = (s: number[]) => s.reduce((p, q) => p * q, 1);
      const [got, want] = await both(() => tf.add(tf.tensor(values(size(sa), 5), sa), tf.tensor(values(size(sb), 6), sb)));
      expect(got, `${sa} + ${sb}`).toEqual(want);
    }
    expect(simdKernelCalls().Add - before).toBe(cases.length);
    for (const [sa, sb] of [[[3, 5], [1, 5]], [[3, 5], []], [[4, 1], [4]]] as const) {
      const size = (s: readonly number[]) => s.reduce((p, q) => p * q, 1);
      const [got, want] = await both(() => tf.add(tf.tensor(values(size(sa), 5), [...sa]), tf.tensor(values(size(sb), 6), [...sb])));
      expect(got, `${sa} + ${sb}`).toEqual(want);
    }
    expect(simdKernelCalls().Add - before).toBe(cases.length);
  });

  it('tanh equals cpu to 1e-6 relative (small values included), saturates at +-1, keeps NaN and -0', async () => {
    const xs = [...Array.from({ length: 2001 }, (_, i) => -100 + i * 0.1), 1e-7, -3e-5, 0.2499, 0.2501, 1e-3, Infinity, -Infinity, NaN, -0, 0, 8.9, -9.01];
    const before = simdKernelCalls().Tanh;
    const [got, want] = await both(() => tf.tanh(tf.tensor1d(xs)));
    expect(simdKernelCalls().Tanh - before).toBe(1);
    for (let i = 0; i < xs.length; i++) {
      if (Number.isNaN(xs[i])) expect(got[i]).toBeNaN();
      else expect(Math.abs(got[i] - want[i]), `tanh(${xs[i]})`).toBeLessThanOrEqual(1e-6 * Math.abs(want[i]) + 1e-30);
    }
    expect(Object.is(got[xs.length - 4], -0)).toBe(true);
    expect(got[xs.indexOf(Infinity)]).toBe(1);
    expect(got[xs.indexOf(-Infinity)]).toBe(-1);
  });

  it('no tensor leaks through the SIMD kernels, forward or backward', async () => {
    await tf.setBackend('wasm');
    const a = tf.tensor(values(2 * 5 * 6, 5), [2, 5, 6]);
    const b = tf.tensor(values(2 * 6 * 3, 6), [2, 6, 3]);
    const start = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const g = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.tanh(tf.matMul(p, q))))([a, b]);
      tf.dispose(g);
    }
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([a, b]);
  });
});
